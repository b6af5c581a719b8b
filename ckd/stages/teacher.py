"""`teacher`: a fingerprint of the teacher in use, which `query` depends on instead of any one file.

DVC cannot depend on "whichever file the teacher is": `teacher.model` for an ONNX teacher, the module of a
`python` teacher, nothing for a server. This stage (`always_changed`, about a second, no teacher call)
writes the SHA-256 of each file the backend names (`TeacherSettings.files`); `query` re-runs only when
that changes, or when its `teacher` params do.
"""

from __future__ import annotations

from pathlib import Path

from ckd.errors import CkdError
from ckd.teachers.base import TeacherSettings
from ckd.teachers.onnx_file import file_sha256


def fingerprint(teacher: TeacherSettings) -> dict:
    files = {}
    for name in teacher.files():
        path = Path(name)
        if not path.is_file():
            raise CkdError(f"{path}: the teacher's file is not found (teacher.kind {teacher.kind})")
        files[name] = file_sha256(path)
    return {"kind": teacher.kind, "files": files}
