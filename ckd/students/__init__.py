"""Student architectures, registered by name; each takes raw inputs (normalisation inside)."""

from ckd.students import cnn, mlp  # noqa: F401  (registers the architectures)
from ckd.students.base import STUDENTS, build_student

__all__ = ["STUDENTS", "build_student"]
