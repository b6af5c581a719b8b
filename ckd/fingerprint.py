"""SHA-256 fingerprints of the files the params name (data, a teacher's file), for the always-changed
`source` and `teacher` stages and the model card: DVC cannot depend on "whichever file the params name".
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ckd.errors import CkdError
from ckd.teachers.onnx_file import file_sha256


def cache_beside(out: str | Path) -> Path:
    """Where a stage whose output is `out` keeps its hash cache (a plain file, not a DVC output)."""
    out = Path(out)
    return out.with_name(f".{out.stem}-hashes.json")


class HashCache:
    """SHA-256 of files keyed by (path, size, mtime), as DVC's state database: a large image folder or ONNX
    teacher is hashed once, not on every run. A plain JSON file beside the fingerprint, not a DVC output."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list[Any]] = {}
        self.used: dict[str, list[Any]] = {}
        if path is not None and path.is_file():
            with contextlib.suppress(json.JSONDecodeError, OSError):
                self.entries = json.loads(path.read_text())

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


def files_of(
    source: str, parameter: str, cache: HashCache, missing: str = "file not found", names: bool = True
) -> dict[str, str]:
    """{name: SHA-256} of the file `source`, or of every file under the folder `source`; with `names`, {} for
    a registered name (no suffix, not on disk); else a missing path is one line naming `parameter`."""
    path = Path(source)
    if path.is_file():
        return {source: cache.sha256(path)}
    if path.is_dir():
        return {
            f"{source}/{p.relative_to(path).as_posix()}": cache.sha256(p)
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
    if path.suffix or not names:
        raise CkdError(f"{source}: {missing} ({parameter})")
    return {}  # a registered name (the embedded `digits`): its content comes with the installed packages


def public_address(value: str) -> str:
    """What of a store or server address may be written down (dvc.lock, fingerprints, records): scheme, host, port
    and database or path; never a user name, password or query string. A plain path (SQLite) is kept as it is."""
    if "://" not in value:
        return value
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return value.split("://", 1)[0] + "://(malformed)"
    return f"{parts.scheme}://{parts.hostname or ''}{f':{port}' if port else ''}{parts.path}"


def public_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A teacher's settings with `store` and `url` reduced to `public_address`."""
    return {
        key: public_address(value) if key in ("store", "url") and isinstance(value, str) else value
        for key, value in settings.items()
    }
