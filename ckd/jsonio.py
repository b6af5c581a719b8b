"""Small JSON files (metrics, summaries): written whole, read with a one-line error. No heavy imports,
so every stage, the flow and the summary can use them without loading torch."""

from __future__ import annotations

import json
from pathlib import Path

from ckd.errors import CkdError


def write_json(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CkdError(f"{path}: file not found (run the stage that writes it first)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CkdError(f"{path}: not valid JSON ({error})") from None
