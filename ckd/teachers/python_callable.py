"""A teacher that is code: `teacher.kind: python`, `teacher.callable: package.module:function`.

    teacher:
      kind: python
      callable: my_teacher:predict   # my_teacher.py in the project (or an installed package)
      budget: 300

`function(x)` maps raw inputs [batch, *sample_shape] (float32; texts: [batch] strings) to scores [batch, classes]
(`teacher.scores`: logits or probabilities), under the budget and store of every backend, in a process of its own
(`ckd.teachers.python_worker`): an exception, `sys.exit`, `KeyboardInterrupt`, a crash, or no answer within
`teacher.timeout_s` (the process is then stopped) counts the batch as lost (it may have called something paid)
and stops the run with one line; `query` never dies with it. The identity is the callable's name and the
SHA-256 of its module's source: changed code is a new teacher (answers of its own, the same purse).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import io
import os
import re
import socket
import subprocess
import sys
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal, cast

import numpy as np
from pydantic import Field, field_validator

from ckd.errors import CkdError, ConfigError
from ckd.teachers.base import TEACHERS, AnswerUnusable, TeacherSettings
from ckd.teachers.python_worker import PATH_ENV

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
    timeout_s: float = Field(300.0, gt=0, le=86_400)  # per batch; then its process is stopped, the batch lost

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
        return cls(config.callable, config.timeout_s)

    def __init__(self, target: str, timeout_s: float = 300.0) -> None:
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
        self.target, self.timeout_s = target, float(timeout_s)
        self._worker: tuple[subprocess.Popen[bytes], Connection] | None = None
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:24]
        self.identity = f"python:{target}:{digest}"
        self.description = f"Python function {target} ({source})"

    # -- the function's own process ------------------------------------------------------------
    def _start(self) -> tuple[subprocess.Popen[bytes], Connection]:
        """Start the worker and wait (at most teacher.timeout_s) for its import of the module: free."""
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-m", "ckd.teachers.python_worker", str(theirs.fileno()), self.target],
            pass_fds=(theirs.fileno(),),
            env={**os.environ, PATH_ENV: os.pathsep.join(sys.path)},
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        conn = Connection(ours.detach())
        self._worker = (process, conn)
        weakref.finalize(self, _stop, process, conn)
        try:
            reply = self._receive(conn, "starting")
        except PythonTeacherFailed as error:
            raise CkdError(f"teacher.callable: {error}") from None
        if reply != b"ready":
            self.close()
            raise CkdError(f"teacher.callable: {self.target} cannot start in its own process ({reply[1:].decode()})")
        return process, conn

    def _receive(self, conn: Connection, doing: str) -> bytes:
        if not conn.poll(self.timeout_s):
            self.close()
            raise PythonTeacherFailed(
                f"{self.target} gave no answer within teacher.timeout_s={self.timeout_s:g} s while {doing}; "
                "its process was stopped"
            )
        try:
            return conn.recv_bytes()
        except (EOFError, OSError):
            status = self.close()
            raise PythonTeacherFailed(f"{self.target}'s process ended (exit status {status}) while {doing}") from None

    def close(self) -> int | None:
        """Stop the worker (the next call starts a new one); its exit status."""
        if self._worker is None:
            return None
        process, conn = self._worker
        self._worker = None
        return _stop(process, conn)

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        """Nothing is declared before the first call (the answers' shape is checked as they come); the
        worker is started here, so a module that cannot start in it costs no call."""
        if self._worker is None:
            self._start()

    def predict(self, x: np.ndarray) -> np.ndarray:
        _, conn = self._worker if self._worker is not None else self._start()
        request = io.BytesIO()
        np.save(request, np.asarray(x), allow_pickle=False)
        try:
            conn.send_bytes(request.getvalue())
        except OSError:
            status = self.close()
            raise PythonTeacherFailed(f"{self.target}'s process ended (exit status {status})") from None
        reply = self._receive(conn, f"answering a batch of {len(x)}")
        kind, body = reply[:1], reply[1:]
        if kind == b"A":
            return cast(np.ndarray, np.load(io.BytesIO(body), allow_pickle=False))
        if kind == b"U":
            raise AnswerUnusable("the function returned something that is not an array of numbers", body.decode())
        raise PythonTeacherFailed(f"{self.target} raised {body.decode()}")


class PythonTeacherFailed(Exception):
    """The function raised, exited, crashed or overran teacher.timeout_s: the batch is lost (`ckd.query`)."""


def _stop(process: subprocess.Popen[bytes], conn: Connection) -> int | None:
    conn.close()
    if process.poll() is None:
        process.kill()
    return process.wait()
