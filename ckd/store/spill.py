"""A paid answer the store could not take is written to a spill file, and the next run imports it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ckd.data.arrays import read_arrays, write_arrays
from ckd.errors import CkdError

log = logging.getLogger(__name__)


def spill_dirs(store: Any) -> list[Path]:
    return [*store.spill_dirs, Path.home() / ".cache" / "ckd" / "spill"]


def spill(
    store: Any,
    teacher: str,
    batch: int,
    ids: list[int] | np.ndarray,
    hashes: list[str],
    scores: np.ndarray,
    usage: dict[str, int] | None = None,
) -> Path:
    """Write the answer (and the tokens it cost, if the teacher reported any) to the first spill folder
    that takes it; raise OSError when none does."""
    scores = np.asarray(scores, np.float32)
    values: dict[str, Any] = {"teacher": teacher, "batch": batch, "ids": ids, "hashes": hashes, "scores": scores}
    values |= {f"usage_{key}": int(value) for key, value in (usage or {}).items()}
    arrays = {name: np.asarray(value) for name, value in values.items()}
    last: OSError | None = None
    for directory in spill_dirs(store):
        path = directory / f"spill-{store.store_id}-{batch:08d}.npz"
        try:
            write_arrays(path, **arrays)
            return path
        except OSError as error:
            last = error
    raise last or OSError("no spill folder")


def import_spills(store: Any) -> int:
    """Store the answers left in spill files by an earlier run of this store; return how many."""
    imported = 0
    for directory in spill_dirs(store):
        for path in sorted(directory.glob(f"spill-{store.store_id}-*.npz")) if directory.is_dir() else []:
            try:
                arrays = read_arrays(path, required=("teacher", "batch", "ids", "hashes", "scores"))
            except CkdError as error:
                raise CkdError(
                    f"{path}: a spilled paid answer cannot be read ({error}); move it away once you have looked at it"
                ) from None
            batch = int(arrays["batch"])
            status = store.batch_status(batch)
            if status in ("in_flight", "lost"):
                try:
                    usage = {k.removeprefix("usage_"): int(v) for k, v in arrays.items() if k.startswith("usage_")}
                    store.write_answers(batch, [str(h) for h in arrays["hashes"]], arrays["scores"], usage or None)
                    imported += len(arrays["hashes"])
                except Exception as error:  # another run imported it meanwhile, or the store still fails
                    if store.batch_status(batch) != "answered":
                        raise CkdError(
                            f"{path}: the store {store.location} still cannot take this spilled paid "
                            f"answer ({str(getattr(error, 'orig', None) or error).splitlines()[0]}); "
                            "it stays in the file"
                        ) from None
            elif status != "answered":
                raise CkdError(
                    f"{path}: spilled answer of batch {batch}, which the store {store.location} records as "
                    f"{status}; move the file away once you have looked at it"
                )
            path.unlink()
            log.info("imported %d paid answers of batch %d from %s", len(arrays["hashes"]), batch, path)
    return imported
