"""Teachers: black boxes that map raw inputs to per-class scores, one backend per module."""

from ckd.teachers import counting, http_oip, onnx_file, openai_chat, python_callable  # noqa: F401  (registers the backends)
from ckd.teachers.base import TEACHERS, Teacher, build_teacher

__all__ = ["TEACHERS", "Teacher", "build_teacher"]
