"""The budget ledger: an append-only, fsynced record of every sample the teacher may have computed.

Contract, for every backend:
  * a batch is *reserved* (written and fsynced) before its request leaves; from then on its samples
    count against the budget;
  * `answered` marks the batch's scores stored; `rejected` marks an answer that came back unusable
    (it was computed, so it stays counted; its raw answer is kept apart);
  * `refused` marks a definite refusal (the teacher said no, nothing was computed): the count is
    given back;
  * a reserved batch with no closing event is *lost*: its outcome is unknown, it stays counted.

    counted = sum(|reserved batch|) - sum(|refused batch|)   and always   counted <= budget.

An exclusive lock on the ledger stops two processes from spending the same budget at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ckd.data.arrays import fsync_dir
from ckd.errors import BudgetExhausted, CkdError


@dataclass
class BatchRecord:
    batch: int
    ids: list[int]
    hashes: list[str]
    status: str = "in_flight"  # in_flight (lost if the run ended) | answered | rejected | refused
    file: str | None = None
    reason: str | None = None


@dataclass
class LedgerState:
    teacher: str | None = None
    batches: dict[int, BatchRecord] = field(default_factory=dict)

    @property
    def counted(self) -> int:
        return sum(len(r.ids) for r in self.batches.values() if r.status != "refused")

    def count(self, status: str) -> int:
        return sum(len(r.ids) for r in self.batches.values() if r.status == status)


class BudgetLedger:
    """Open with `with BudgetLedger(path, teacher_identity) as ledger:` (takes the lock)."""

    def __init__(self, path: str | Path, teacher_identity: str):
        self.path = Path(path)
        self.teacher_identity = teacher_identity
        self.state = LedgerState()
        self._lock = None

    def __enter__(self) -> "BudgetLedger":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.path.with_suffix(".lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CkdError(f"{self.path}: another process is querying this teacher now") from None
        self.state = self._replay()
        if self.state.teacher is None:
            self._append({"event": "open", "teacher": self.teacher_identity})
            self.state.teacher = self.teacher_identity
        elif self.state.teacher != self.teacher_identity:
            raise CkdError(f"{self.path}: ledger belongs to teacher {self.state.teacher}, not {self.teacher_identity}")
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # -- reading -----------------------------------------------------------------------------
    def _replay(self) -> LedgerState:
        state = LedgerState()
        if not self.path.exists():
            return state
        raw = self.path.read_bytes()
        good_end = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn by a crash mid-write: never fsynced, so its request never left
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                raise CkdError(f"{self.path}: corrupt ledger line {line[:60]!r}; it needs a person's look") from None
            self._apply(state, event)
            good_end += len(line)
        if good_end < len(raw):
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
                os.fsync(handle.fileno())
        return state

    @staticmethod
    def _apply(state: LedgerState, event: dict) -> None:
        kind = event["event"]
        if kind == "open":
            state.teacher = event["teacher"]
        elif kind == "reserve":
            state.batches[event["batch"]] = BatchRecord(event["batch"], event["ids"], event["hashes"])
        elif kind in ("answered", "rejected", "refused"):
            record = state.batches[event["batch"]]
            record.status, record.file, record.reason = kind, event.get("file"), event.get("reason")

    # -- writing -----------------------------------------------------------------------------
    def _append(self, event: dict) -> None:
        event = {**event, "time": round(time.time(), 3)}
        new_file = not self.path.exists()
        with open(self.path, "a") as handle:
            handle.write(json.dumps(event, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if new_file:
            fsync_dir(self.path.parent)
        self._apply(self.state, event)

    def reserve(self, ids: list[int], hashes: list[str], budget: int) -> int:
        """Count `ids` against `budget` durably, before the request leaves; return the batch number."""
        if self.state.counted + len(ids) > budget:
            raise BudgetExhausted(f"teacher.budget={budget}: {self.state.counted} already counted, "
                                  f"cannot reserve {len(ids)} more")
        batch = max(self.state.batches, default=0) + 1
        self._append({"event": "reserve", "batch": batch, "ids": [int(i) for i in ids], "hashes": list(hashes)})
        return batch

    def mark_answered(self, batch: int, file: str) -> None:
        self._append({"event": "answered", "batch": batch, "file": file})

    def mark_rejected(self, batch: int, file: str | None, reason: str) -> None:
        self._append({"event": "rejected", "batch": batch, "file": file, "reason": reason})

    def mark_refused(self, batch: int, reason: str) -> None:
        self._append({"event": "refused", "batch": batch, "reason": reason})

    # -- summaries ---------------------------------------------------------------------------
    @property
    def counted(self) -> int:
        return self.state.counted

    def in_flight(self) -> list[BatchRecord]:
        return [r for r in self.state.batches.values() if r.status == "in_flight"]

    def answered(self) -> list[BatchRecord]:
        return [r for r in self.state.batches.values() if r.status == "answered"]
