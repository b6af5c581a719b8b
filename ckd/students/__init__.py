"""Student architectures, registered by name; each takes raw inputs (normalisation inside)."""

from ckd.students.base import STUDENTS, build_student
from ckd.students import cnn, mlp  # noqa: F401  (registers the architectures)

__all__ = ["STUDENTS", "build_student"]
