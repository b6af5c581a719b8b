"""`teacher`: a fingerprint of the teacher in use, which `query` depends on instead of any one file.

DVC cannot depend on "whichever file the teacher is" (an ONNX file, a `python` teacher's module, nothing for a
server). This stage (`always_changed`, no teacher call) writes the SHA-256 of each file the backend names and
the settings with `teacher.store` and `teacher.url` cut to scheme, host, port and database: `query` depends on
this file, not on the `teacher` params, so no user name or password ever reaches dvc.lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckd.fingerprint import HashCache, files_of, public_settings
from ckd.stages._entry import run_fingerprint
from ckd.teachers.base import TeacherSettings


def fingerprint(teacher: TeacherSettings, cache_file: Path | None = None) -> dict[str, Any]:
    cache = HashCache(cache_file)
    files: dict[str, str] = {}
    parameter = f"teacher.kind {teacher.kind}"
    for name in teacher.files():
        files |= files_of(name, parameter, cache, missing="the teacher's file is not found", names=False)
    cache.save()
    return {"kind": teacher.kind, "files": files, "settings": public_settings(teacher.model_dump(mode="json"))}


def main(argv: list[str] | None = None) -> None:
    run_fingerprint("teacher", __doc__, lambda params, cache: fingerprint(params.teacher, cache), argv)


if __name__ == "__main__":
    main()
