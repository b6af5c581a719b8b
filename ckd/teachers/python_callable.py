"""A teacher that is code: `teacher.kind: python`, `teacher.callable: package.module:function`.

    teacher:
      kind: python
      callable: my_teacher:predict   # my_teacher.py in the project (or an installed package)
      budget: 300

`function(x)` takes a batch of raw inputs [batch, *sample_shape] (float32; a text source: [batch] strings)
and returns scores [batch, classes] (`teacher.scores`: logits or probabilities). It runs under the same
budget and store as every backend: each input it is given is reserved first and counted, and its answers
are stored once. An exception from the function counts the batch as lost (it may have called something
paid) and stops the run with one line. The teacher's identity is the callable's name and the SHA-256 of
its module's source, so changed code is a new teacher with answers of its own (the same purse).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from ckd.errors import CkdError, ConfigError
from ckd.teachers.base import TEACHERS, TeacherSettings

_CALLABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def module_file(module: str) -> Path:
    """The source file of `module`, found without running it (its parent packages are imported)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:
        raise ConfigError("teacher.callable", f"cannot find module {module!r} ({error})") from None
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        raise ConfigError("teacher.callable", f"no module {module!r} on the path (run from the project's root)")
    return Path(spec.origin)


class PythonTeacherConfig(TeacherSettings):
    """`teacher.kind: python`: a function from a batch of inputs to scores."""

    kind: Literal["python"] = "python"
    callable: str = Field(..., min_length=3)

    @field_validator("callable")
    @classmethod
    def _callable(cls, value: str) -> str:
        if not _CALLABLE.fullmatch(value):
            raise ValueError("must be package.module:function")
        return value

    def files(self) -> tuple[str, ...]:
        return (str(module_file(self.callable.split(":")[0])),)


@TEACHERS.register("python")
class PythonTeacher:
    concurrency = 1
    num_classes: int | None = None  # not declared: the first answer's width is checked against the data
    identity: str
    config_model = PythonTeacherConfig

    @classmethod
    def from_config(cls, config: PythonTeacherConfig) -> PythonTeacher:
        return cls(config.callable)

    def __init__(self, target: str):
        module_name, function_name = target.split(":")
        source = module_file(module_name)
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise CkdError(
                f"teacher.callable: importing {module_name} failed ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''})"
            ) from None
        function = getattr(module, function_name, None)
        if not callable(function):
            raise ConfigError("teacher.callable", f"{module_name} has no function {function_name!r}")
        if isinstance(function, type):
            raise ConfigError(
                "teacher.callable",
                f"{target} is a class; name a function from a batch of inputs to scores (e.g. a module-level "
                "function that calls your model)",
            )
        try:  # checked before any call: a wrong signature must not spend the budget
            inspect.signature(function).bind(None)
        except TypeError as error:
            raise ConfigError("teacher.callable", f"{target} must take one argument, the batch ({error})") from None
        except ValueError:
            pass  # a builtin without a signature: taken as it is
        self.function = function
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:24]
        self.identity = f"python:{target}:{digest}"
        self.description = f"Python function {target} ({source})"

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        """Nothing is declared before the first call; the answers' shape is checked as they come."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.function(x))
