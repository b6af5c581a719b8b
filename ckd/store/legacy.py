"""Import the ledgers ckd wrote before the store (`<teacher_outputs>/<teacher key>/ledger.jsonl` with
`batches/*.npz` and `quarantine/*.npz`), once per store, nothing lost and nothing asked again: every
counted sample stays counted, every stored answer becomes an answer of the store."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from ckd.data.arrays import read_arrays
from ckd.errors import CkdError

log = logging.getLogger(__name__)

CLOSING = ("answered", "rejected", "refused")


def _bad(path: Path, number: int, problem: str) -> CkdError:
    return CkdError(
        f"{path}: line {number} is not a ledger event ({problem}); fix or remove that line, then "
        "run again (nothing was imported)"
    )


def read_ledger(path: Path) -> tuple[str | None, dict[int, dict]]:
    """The teacher and the batches of an old ledger; a torn last line (never fsynced, never sent) is dropped."""
    teacher, batches = None, {}
    raw = path.read_bytes()
    for number, line in enumerate(raw.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):
            break
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise _bad(path, number, "not JSON") from None
        if not isinstance(event, dict) or event.get("event") not in ("open", "reserve", *CLOSING):
            raise _bad(path, number, "no known 'event'")
        kind = event["event"]
        if kind == "open":
            if not isinstance(event.get("teacher"), str):
                raise _bad(path, number, "'teacher' must be a string")
            teacher = event["teacher"]
            continue
        if not isinstance(event.get("batch"), int):
            raise _bad(path, number, "'batch' must be an integer")
        if kind == "reserve":
            ids, hashes = event.get("ids"), event.get("hashes")
            if not (
                isinstance(ids, list)
                and isinstance(hashes, list)
                and len(ids) == len(hashes)
                and all(isinstance(i, int) for i in ids)
                and all(isinstance(h, str) for h in hashes)
            ):
                raise _bad(path, number, "'ids' and 'hashes' must be lists of integers and strings of one length")
            batches[event["batch"]] = {"ids": ids, "hashes": hashes, "status": "lost", "file": None, "reason": ""}
        else:
            if event["batch"] not in batches:
                raise _bad(path, number, f"batch {event['batch']} closed but never reserved")
            batches[event["batch"]].update(status=kind, file=event.get("file"), reason=str(event.get("reason") or ""))
    return teacher, batches


def legacy_ledgers(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/ledger.jsonl")) if folder.is_dir() else []


def import_legacy(store, folder: str | Path, aliases: dict[str, str] | None = None) -> int:
    """Import every old ledger under `folder` not yet imported into `store`; a ledger whose teacher is a
    former identity of a teacher in `aliases` goes to that teacher's canonical identity. Returns the
    number of samples imported."""
    aliases = aliases or {}
    imported = 0
    for ledger in legacy_ledgers(Path(folder)):
        key = f"legacy:{ledger.resolve()}"
        if store.get_meta(key) is not None:
            continue
        teacher, batches = read_ledger(ledger)
        if teacher is None:
            if batches:
                raise CkdError(f"{ledger}: has batches but no 'open' event naming its teacher; nothing was imported")
            continue
        records = []
        for number, batch in sorted(batches.items()):
            record = {
                "ids": batch["ids"],
                "hashes": batch["hashes"],
                "status": batch["status"],
                "reason": batch["reason"] or f"legacy batch {number}",
            }
            if batch["status"] == "answered":
                path = ledger.parent / (batch["file"] or "")
                try:
                    arrays = read_arrays(path, required=("hashes", "scores"))
                except CkdError as error:
                    raise CkdError(
                        f"{ledger}: batch {number} is answered but its file cannot be read ({error}); "
                        "restore the file, then run again (nothing was imported)"
                    ) from None
                if [str(h) for h in arrays["hashes"]] != batch["hashes"]:
                    raise CkdError(
                        f"{path}: its inputs differ from what {ledger} reserved for batch {number}; "
                        "nothing was imported"
                    )
                record["scores"] = arrays["scores"]
            if batch["status"] == "rejected" and batch["file"] and (ledger.parent / batch["file"]).is_file():
                record["raw"] = str(read_arrays(ledger.parent / batch["file"]).get("raw", ""))
            records.append(record)
        # one transaction per ledger, marked done inside it: imported once, also when two runs start together
        imported += store.record_batches(
            aliases.get(teacher, teacher),
            f"imported from {ledger}",
            records,
            marker=(key, hashlib.sha256(ledger.read_bytes()).hexdigest()),
        )
        log.info("imported %s (%d batches) into %s", ledger, len(batches), store.location)
    return imported
