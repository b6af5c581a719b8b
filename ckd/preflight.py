"""The `train` stage's own checks of `student.*`, made before any teacher call (issue 21), as one line naming
the parameter. `ckd.config` checks `student.arch_args`/`method_args` by name; their values, and whether the
student takes the data's inputs, are known only by building them: `sample` (the first stage to know the data's
shape) and `query` (the stage that pays) build every method of the grid and the student as `ckd.train` does,
on torch's meta device (no weights; one forward pass on a meta batch checks the shapes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from ckd.config import StudentConfig
from ckd.data import Pool
from ckd.errors import ConfigError

_BUILD_ERRORS = (TypeError, ValueError, RuntimeError)  # a student refusing its arguments or inputs


@contextmanager
def _refused(parameter: str, what: str, *errors: type[Exception], first_line: bool = False) -> Iterator[None]:
    """`errors` raised in the block become one ConfigError line: `<parameter>: <what> (<error>)`."""
    try:
        yield
    except errors as error:
        raise ConfigError(parameter, f"{what} ({str(error).splitlines()[0] if first_line else error})") from None


def check_student(student: StudentConfig, sample_shape: Sequence[int], num_classes: int, labelled: bool) -> None:
    """Raise a one-line CkdError if `train` would refuse these settings for inputs shaped `sample_shape`."""
    import torch

    from ckd.methods import build_method
    from ckd.students import build_student
    from ckd.train import candidate_grid

    shape = tuple(int(d) for d in sample_shape)
    if student.unlabelled_targets == "neighbours" and len(shape) != 1:
        raise ConfigError(
            "student.unlabelled_targets",
            f"neighbours compares inputs as vectors (table rows, text embeddings), not inputs shaped {shape}; "
            "use self for images",
        )
    for candidate in candidate_grid(student):
        refusal = f"{student.method} refuses {candidate.method_args}"
        with _refused("student.method_args", refusal, TypeError, ValueError, ZeroDivisionError):
            # the teacher's variance is known only after the query: 1.0 stands in (a scale, not a check)
            build_method(student.method, num_classes, 1.0, labelled, **candidate.method_args)
    arch_args, zeros = dict(student.arch_args), np.zeros(shape, np.float32)
    with torch.device("meta"):
        with _refused("student.arch_args", f"{student.arch} refuses {arch_args}", *_BUILD_ERRORS):
            model = build_student(student.arch, shape, num_classes, zeros, zeros + 1, arch_args)
        refusal = f"{student.arch} cannot take inputs shaped {shape}"
        with _refused("student.arch", refusal, *_BUILD_ERRORS, first_line=True), torch.no_grad():
            out = model(torch.zeros((2, *shape)))
    if tuple(out.shape) != (2, num_classes):
        raise ConfigError("student.arch", f"{student.arch} gives outputs {tuple(out.shape[1:])}, not {num_classes}")


def student_digest(student: StudentConfig) -> str:
    """SHA-256 of the student settings (what `check_student` judged), for `query` to tell whether `sample`
    checked the settings in force."""
    return hashlib.sha256(json.dumps(student.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def check_student_for(student: StudentConfig, pool: Pool, checked: str | None = None) -> str:
    """`check_student` for the pool's inputs, classes and labels; returns the settings' digest. `checked`: the
    digest of settings already checked against this pool (by `sample`): then torch is not even imported, which
    keeps `query`, the stage that pays and reads answers, small in memory."""
    digest = student_digest(student)
    if digest != checked:
        check_student(student, pool.x.shape[1:], len(pool.class_names), pool.labels is not None)
    return digest
