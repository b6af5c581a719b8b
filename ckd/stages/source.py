"""`source`: a fingerprint of the data files the params name, which `sample` (and `standin`) depend on.

`data.source` is a name (`digits`), a file or a folder, and `data.test_source` may add one: DVC cannot
depend on "whichever files the params name" (a dependency must exist and be spelt in dvc.yaml). This stage
(`always_changed`, no teacher call) writes the SHA-256 of each file, so editing your CSV, or adding an image
to the folder, re-runs `sample` and what follows, and nothing else does.
"""

from __future__ import annotations

from pathlib import Path

from ckd.config import DataConfig
from ckd.errors import CkdError
from ckd.teachers.onnx_file import file_sha256


def files_of(source: str, parameter: str) -> dict[str, str]:
    path = Path(source)
    if path.is_file():
        return {source: file_sha256(path)}
    if path.is_dir():
        return {
            f"{source}/{p.relative_to(path).as_posix()}": file_sha256(p) for p in sorted(path.rglob("*")) if p.is_file()
        }
    if path.suffix:
        raise CkdError(f"{source}: file not found ({parameter})")
    return {}  # a registered name (the embedded `digits`): its content comes with the installed packages


def source_fingerprint(data: DataConfig) -> dict:
    return {
        "source": data.source,
        "files": files_of(data.source, "data.source"),
        "test_source": data.test_source,
        "test_files": files_of(data.test_source, "data.test_source") if data.test_source else {},
    }
