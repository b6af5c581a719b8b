"""`source`: a fingerprint of the data files the params name, which `sample` (and `standin`) depend on.

`data.source` is a name (`digits`), a file or a folder, and `data.test_source` may add one: DVC cannot
depend on "whichever files the params name" (a dependency must exist and be spelt in dvc.yaml). This stage
(`always_changed`, no teacher call) writes the SHA-256 of each file, so editing your CSV, or adding an image
to the folder, re-runs `sample` and what follows, and nothing else does.
"""

from __future__ import annotations

import json
from pathlib import Path

from ckd.config import DataConfig
from ckd.errors import CkdError
from ckd.teachers.onnx_file import file_sha256


class HashCache:
    """SHA-256 of files keyed by (path, size, mtime): a file whose size and modification time are unchanged is
    not read again (DVC's own state database does the same), so a large image folder is hashed once.
    The cache is a plain JSON file beside the fingerprint, not a DVC output."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, list] = {}
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                self.entries = {}
        self.used: dict[str, list] = {}

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key = str(file.resolve())
        entry = self.entries.get(key)
        if not (isinstance(entry, list) and entry[:2] == [stat.st_size, stat.st_mtime_ns]):
            entry = [stat.st_size, stat.st_mtime_ns, file_sha256(file)]
        self.used[key] = entry
        return str(entry[2])

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.used, sort_keys=True))


def files_of(source: str, parameter: str, cache: HashCache) -> dict[str, str]:
    path = Path(source)
    if path.is_file():
        return {source: cache.sha256(path)}
    if path.is_dir():
        return {
            f"{source}/{p.relative_to(path).as_posix()}": cache.sha256(p)
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
    if path.suffix:
        raise CkdError(f"{source}: file not found ({parameter})")
    return {}  # a registered name (the embedded `digits`): its content comes with the installed packages


def source_fingerprint(data: DataConfig, cache_file: Path | None = None) -> dict:
    cache = HashCache(cache_file)
    fingerprint = {
        "source": data.source,
        "files": files_of(data.source, "data.source", cache),
        "test_source": data.test_source,
        "test_files": files_of(data.test_source, "data.test_source", cache) if data.test_source else {},
    }
    cache.save()
    return fingerprint
