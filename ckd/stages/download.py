"""`download`: the file `data.download` names, at its `path` (default `data.source`), from an offline mirror
or its public URL, its SHA-256 checked (ckd/data/download.py); without `data.download`, a note only."""

from __future__ import annotations

import argparse
from typing import Any

from ckd.config import DataConfig, Params
from ckd.data.download import fetch
from ckd.stages import write_json
from ckd.stages._entry import parser, run


def download(data: DataConfig) -> dict[str, Any]:
    if data.download is None:
        return {"path": None, "sha256": None, "from": None, "note": "no data.download: nothing to fetch"}
    return fetch(data.download.url, data.download.sha256, data.download.path or data.source, data.mirror)


def main(argv: list[str] | None = None) -> None:
    p = parser("download", __doc__)
    p.add_argument("--out", required=True, help="the record of what was fetched and from where (JSON)")

    def body(args: argparse.Namespace, params: Params) -> dict[str, Any]:
        record = download(params.data)
        write_json(args.out, record)
        return {"fetched": record["from"] not in (None, "present")}

    run("download", p, body, argv)


if __name__ == "__main__":
    main()
