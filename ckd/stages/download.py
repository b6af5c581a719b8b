"""`download`: the file `data.download` names, at its `path` (default `data.source`), from an offline mirror
or its public URL, its SHA-256 checked (ckd/data/download.py); without `data.download`, a note only."""

from __future__ import annotations

from ckd.config import DataConfig
from ckd.data.download import fetch


def download(data: DataConfig) -> dict:
    if data.download is None:
        return {"path": None, "sha256": None, "from": None, "note": "no data.download: nothing to fetch"}
    spec = data.download
    return fetch(spec.url, spec.sha256, spec.path or data.source, data.mirror)
