"""`source`: a fingerprint of the data files the params name, which `sample` (and `standin`) depend on.

DVC cannot depend on "whichever files `data.source`/`data.test_source` name". This stage (`always_changed`, no
teacher call) writes each file's SHA-256, so editing your CSV or adding an image re-runs `sample` and what
follows, and nothing else does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckd.config import DataConfig
from ckd.fingerprint import HashCache, files_of
from ckd.stages._entry import run_fingerprint


def source_fingerprint(data: DataConfig, cache_file: Path | None = None) -> dict[str, Any]:
    cache = HashCache(cache_file)
    fingerprint = {
        "source": data.source,
        "files": files_of(data.source, "data.source", cache),
        "test_source": data.test_source,
        "test_files": files_of(data.test_source, "data.test_source", cache) if data.test_source else {},
    }
    cache.save()
    return fingerprint


def main(argv: list[str] | None = None) -> None:
    run_fingerprint("source", __doc__, lambda params, cache: source_fingerprint(params.data, cache), argv)


if __name__ == "__main__":
    main()
