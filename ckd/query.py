"""Ask the teacher once about the selected samples, under a hard budget, losing nothing paid for.

Outputs live under `<store>/<teacher key>/`: `ledger.jsonl` (see `ckd.budget`), `batches/*.npz`
(ids, input hashes, scores) and `quarantine/*.npz` (answers that came back unusable). Answers are
keyed by the teacher's identity and each input's SHA-256, so a change downstream (or a new split
that selects an input already paid for) never asks again, and two teachers never mix.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ckd.budget import BudgetLedger
from ckd.data.arrays import read_arrays, write_arrays
from ckd.errors import BudgetExhausted, TeacherError
from ckd.teachers.base import Teacher

log = logging.getLogger(__name__)


class TeacherRefused(Exception):
    """A backend raises this for a definite refusal: nothing was computed, nothing is billed."""


def input_hashes(x: np.ndarray) -> list[str]:
    """SHA-256 of each raw sample's float32 bytes: the key of its stored answer."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in x.reshape(len(x), -1)]


def teacher_key(identity: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9]+", "-", identity.split(":")[0])[:20]
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class QueryResult:
    ids: np.ndarray  # selected ids that have a stored answer, sorted
    scores: np.ndarray  # [len(ids), classes], the teacher's raw scores
    teacher_calls: int  # counted against the budget, over the ledger's life
    teacher_outputs: int  # answers stored, over the ledger's life
    teacher_lost: int  # counted, no answer (unknown outcome), over the ledger's life
    teacher_rejected: int  # counted, answered garbage, kept in quarantine
    new_calls: int  # counted in this run
    unanswered: int  # selected samples still without an answer
    store: Path


def _check_answer(scores: np.ndarray, batch_size: int, num_classes: int) -> str | None:
    if not np.issubdtype(scores.dtype, np.floating):
        return f"scores have dtype {scores.dtype}, expected floats"
    if scores.shape != (batch_size, num_classes):
        return f"scores have shape {scores.shape}, expected {(batch_size, num_classes)}"
    return None


def _load_answers(directory: Path, ledger: BudgetLedger) -> dict[str, np.ndarray]:
    answers: dict[str, np.ndarray] = {}
    for record in ledger.answered():
        arrays = read_arrays(directory / record.file, required=("hashes", "scores"))
        for digest, row in zip(arrays["hashes"], arrays["scores"]):
            answers.setdefault(str(digest), row)
    return answers


def _recover(directory: Path, ledger: BudgetLedger) -> None:
    """A batch reserved but never closed whose file exists was stored just before a crash."""
    for record in ledger.in_flight():
        name = f"batches/batch-{record.batch:06d}.npz"
        if (directory / name).is_file():
            ledger.mark_answered(record.batch, name)
            log.info("recovered batch %d stored before an interruption", record.batch)


def run_query(teacher: Teacher, ids: np.ndarray, x: np.ndarray, num_classes: int, budget: int,
              store: str | Path, batch_size: int = 32, progress: bool = True) -> QueryResult:
    """Ask `teacher` about the samples `ids` (raw inputs `x`) that have no stored answer yet.

    Each batch is reserved in the ledger before it is sent. When a lost batch leaves too little
    budget for every selected sample, the run stops asking and reports `unanswered` (never overspends).
    """
    teacher.check_fits(tuple(x.shape[1:]), num_classes)  # before anything is paid
    directory = Path(store) / teacher_key(teacher.identity)
    hashes = input_hashes(x)
    with BudgetLedger(directory / "ledger.jsonl", teacher.identity) as ledger:
        _recover(directory, ledger)
        answers = _load_answers(directory, ledger)
        pending = [i for i, digest in enumerate(hashes) if digest not in answers]
        # The same input selected twice (duplicates in the data) is asked about once.
        first_of: dict[str, int] = {}
        pending = [i for i in pending if first_of.setdefault(hashes[i], i) == i]
        calls_before = ledger.counted
        bar = tqdm(total=budget, initial=calls_before, desc="teacher calls", unit="sample",
                   disable=not progress, dynamic_ncols=True)
        try:
            for start in range(0, len(pending), batch_size):
                remaining = budget - ledger.counted
                if remaining <= 0:
                    break
                rows = pending[start:start + batch_size][:remaining]
                batch_ids = [int(ids[i]) for i in rows]
                batch_hashes = [hashes[i] for i in rows]
                batch = ledger.reserve(batch_ids, batch_hashes, budget)
                try:
                    scores = np.asarray(teacher.predict(x[rows]))
                except TeacherRefused as refusal:
                    ledger.mark_refused(batch, str(refusal))
                    raise TeacherError(f"teacher refused batch {batch}: {refusal}") from None
                except Exception as error:
                    # Unknown outcome: it may have been computed, so it stays counted (lost).
                    raise TeacherError(f"teacher call for batch {batch} failed ({type(error).__name__}: "
                                       f"{str(error).splitlines()[0] if str(error) else ''}); its "
                                       f"{len(rows)} samples stay counted as lost") from None
                problem = _check_answer(scores, len(rows), num_classes)
                if problem is not None:
                    name = f"quarantine/batch-{batch:06d}.npz"
                    raw = scores if scores.dtype != object else np.zeros(0)
                    write_arrays(directory / name, ids=np.asarray(batch_ids), hashes=np.asarray(batch_hashes),
                                 scores=raw)
                    ledger.mark_rejected(batch, name, problem)
                    raise TeacherError(f"teacher answered batch {batch} unusably: {problem}; "
                                       f"raw answer kept in {directory / name}")
                name = f"batches/batch-{batch:06d}.npz"
                write_arrays(directory / name, ids=np.asarray(batch_ids), hashes=np.asarray(batch_hashes),
                             scores=scores.astype(np.float32))
                ledger.mark_answered(batch, name)
                for digest, row in zip(batch_hashes, scores.astype(np.float32)):
                    answers[digest] = row
                bar.update(len(rows))
        finally:
            bar.close()
        have = np.array([digest in answers for digest in hashes], dtype=bool)
        result_scores = np.stack([answers[h] for h, ok in zip(hashes, have) if ok]) if have.any() \
            else np.zeros((0, num_classes), np.float32)
        state = ledger.state
        return QueryResult(
            ids=np.asarray(ids)[have], scores=result_scores.astype(np.float32),
            teacher_calls=state.counted, teacher_outputs=state.count("answered"),
            teacher_lost=state.count("in_flight"), teacher_rejected=state.count("rejected"),
            new_calls=state.counted - calls_before, unanswered=int((~have).sum()), store=directory,
        )


__all__ = ["run_query", "QueryResult", "TeacherRefused", "input_hashes", "teacher_key", "BudgetExhausted"]
