"""Teachers: black boxes that map raw inputs to per-class scores, one backend per module.

A backend outside the package (a project's own, the tests' counting teacher) registers itself in a module
named in `CKD_PLUGINS` (comma-separated, importable from the working directory), imported after the built-in
backends in every process, so that `teacher.kind` names it in params.yaml as it names a built-in one.
"""

import importlib
import os

from ckd.teachers import http_oip, onnx_file, openai_chat, python_callable  # noqa: F401  (registers the backends)
from ckd.teachers.base import TEACHERS, Teacher, build_teacher

for _plugin in filter(None, (name.strip() for name in os.environ.get("CKD_PLUGINS", "").split(","))):
    try:
        importlib.import_module(_plugin)
    except ImportError as error:
        raise ImportError(f"CKD_PLUGINS: cannot import {_plugin!r} ({error})") from None

__all__ = ["TEACHERS", "Teacher", "build_teacher"]
