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
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ckd.budget import BudgetLedger
from ckd.data.arrays import read_arrays, write_arrays
from ckd.errors import TeacherError
from ckd.teachers.base import AnswerUnusable, OutcomeUnknown, ScoredAnswer, Teacher, TeacherRefused

log = logging.getLogger(__name__)


def input_hashes(x: np.ndarray) -> list[str]:
    """SHA-256 of each raw sample's float32 bytes (texts: their UTF-8 bytes): the key of its stored answer."""
    if x.dtype.kind in "US":
        return [hashlib.sha256(str(text).encode("utf-8")).hexdigest() for text in x]
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
    usage: dict[str, int] = field(default_factory=dict)  # e.g. tokens, summed over stored and quarantined answers


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


USAGE_KEYS = ("prompt_tokens", "completion_tokens")


def _usage_totals(directory: Path, ledger: BudgetLedger) -> dict[str, int]:
    """Tokens (or any usage a backend stores) summed over every answer that came back, used or not."""
    totals: dict[str, int] = {}
    for record in ledger.state.batches.values():
        if record.status in ("answered", "rejected") and record.file and (directory / record.file).is_file():
            arrays = read_arrays(directory / record.file)
            for key in USAGE_KEYS:
                if key in arrays:
                    totals[key] = totals.get(key, 0) + int(np.asarray(arrays[key]).sum())
    return totals


def _recover(directory: Path, ledger: BudgetLedger) -> None:
    """A batch reserved but never closed whose file exists was stored just before a crash."""
    for record in ledger.in_flight():
        name = f"batches/batch-{record.batch:06d}.npz"
        if (directory / name).is_file():
            ledger.mark_answered(record.batch, name)
            log.info("recovered batch %d stored before an interruption", record.batch)


def _first_pending(hashes: list[str], answers: dict[str, np.ndarray]) -> list[int]:
    """Rows still without an answer; the same input selected twice is asked about once."""
    first_of: dict[str, int] = {}
    return [i for i, digest in enumerate(hashes) if digest not in answers and first_of.setdefault(digest, i) == i]


class _Session:
    """One run's asking: reserves before sending, stores on answer, keeps at most `concurrency` batches
    in flight. Ledger writes happen on this thread only; the teacher's calls run on worker threads."""

    def __init__(self, teacher: Teacher, ledger: BudgetLedger, directory: Path, ids, x, hashes, num_classes: int,
                 budget: int, batch_size: int, answers: dict[str, np.ndarray], bar):
        self.teacher, self.ledger, self.directory = teacher, ledger, directory
        self.ids, self.x, self.hashes, self.num_classes = ids, x, hashes, num_classes
        self.budget, self.batch_size, self.answers, self.bar = budget, batch_size, answers, bar
        self.fatal: TeacherError | None = None

    def one_pass(self, pool: ThreadPoolExecutor, concurrency: int) -> int:
        """Ask once about every pending row (as the budget allows); return how many batches were sent."""
        pending = _first_pending(self.hashes, self.answers)
        chunks = [pending[i:i + self.batch_size] for i in range(0, len(pending), self.batch_size)]
        in_flight: dict = {}
        sent = 0
        while (chunks or in_flight):
            while chunks and len(in_flight) < concurrency and self.fatal is None:
                remaining = self.budget - self.ledger.counted
                if remaining <= 0:
                    chunks = []
                    break
                rows = chunks.pop(0)[:remaining]
                batch = self.ledger.reserve([int(self.ids[i]) for i in rows], [self.hashes[i] for i in rows],
                                            self.budget)
                in_flight[pool.submit(self.teacher.predict, self.x[rows])] = (batch, rows)
                sent += 1
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                batch, rows = in_flight.pop(future)
                self._settle(future, batch, rows)
            if self.fatal is not None:
                chunks = []
        return sent

    def _quarantine(self, batch: int, rows: list[int], raw: np.ndarray, problem: str, extras=None) -> None:
        """Keep a paid but unusable answer apart, with the teacher's words, and stop the run."""
        name = f"quarantine/batch-{batch:06d}.npz"
        write_arrays(self.directory / name, ids=np.asarray([int(self.ids[i]) for i in rows]),
                     hashes=np.asarray([self.hashes[i] for i in rows]), raw=raw, problem=np.asarray(problem),
                     **(extras or {}))
        self.ledger.mark_rejected(batch, name, problem)
        self.fatal = self.fatal or TeacherError(f"teacher answered batch {batch} unusably: {problem}; "
                                                f"raw answer kept in {self.directory / name}")

    def _settle(self, future, batch: int, rows: list[int]) -> None:
        extras: dict[str, np.ndarray] = {}
        try:
            answer = future.result()
            if isinstance(answer, ScoredAnswer):
                answer, extras = answer.scores, answer.extras
            scores = np.asarray(answer)
        except TeacherRefused as refusal:
            self.ledger.mark_refused(batch, str(refusal))
            self.fatal = self.fatal or TeacherError(f"teacher refused batch {batch}: {refusal}")
            return
        except AnswerUnusable as unusable:
            self._quarantine(batch, rows, np.asarray(unusable.raw), str(unusable), unusable.extras)
            return
        except OutcomeUnknown as unknown:
            # It may have been computed: it stays counted (lost); asked again later only while budget remains.
            log.warning("batch %d: no answer (%s); its %d samples stay counted as lost", batch, unknown, len(rows))
            return
        except Exception as error:
            self.fatal = self.fatal or TeacherError(
                f"teacher call for batch {batch} failed ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}); its {len(rows)} samples stay counted as lost")
            return
        batch_ids = np.asarray([int(self.ids[i]) for i in rows])
        batch_hashes = np.asarray([self.hashes[i] for i in rows])
        problem = _check_answer(scores, len(rows), self.num_classes)
        if problem is not None:
            self._quarantine(batch, rows, scores if scores.dtype != object else np.asarray(str(scores)), problem,
                             extras)
            return
        name = f"batches/batch-{batch:06d}.npz"
        write_arrays(self.directory / name, ids=batch_ids, hashes=batch_hashes, scores=scores.astype(np.float32),
                     **extras)
        self.ledger.mark_answered(batch, name)
        for digest, row in zip(batch_hashes, scores.astype(np.float32)):
            self.answers[str(digest)] = row
        self.bar.update(len(rows))


def run_query(teacher: Teacher, ids: np.ndarray, x: np.ndarray, num_classes: int, budget: int,
              store: str | Path, batch_size: int = 32, progress: bool = True) -> QueryResult:
    """Ask `teacher` about the samples `ids` (raw inputs `x`) that have no stored answer yet.

    Each batch is reserved in the ledger before it is sent, with at most `teacher.concurrency` batches
    in flight. A batch whose outcome is unknown stays counted as lost; its samples are asked again in a
    later pass only while budget remains, so the count never exceeds `budget`. What budget cannot
    cover is reported as `unanswered`.
    """
    teacher.check_fits(tuple(x.shape[1:]), num_classes)  # before anything is paid
    directory = Path(store) / teacher_key(teacher.identity)
    hashes = input_hashes(x)
    concurrency = max(1, int(getattr(teacher, "concurrency", 1)))
    # One request per input for an LLM: each reservation then covers exactly what one request may cost.
    batch_size = min(batch_size, int(getattr(teacher, "batch_limit", batch_size)))
    with BudgetLedger(directory / "ledger.jsonl", teacher.identity) as ledger:
        _recover(directory, ledger)
        answers = _load_answers(directory, ledger)
        calls_before = ledger.counted
        bar = tqdm(total=budget, initial=calls_before, desc="teacher calls", unit="sample",
                   disable=not progress, dynamic_ncols=True)
        session = _Session(teacher, ledger, directory, ids, x, hashes, num_classes, budget, batch_size, answers, bar)
        try:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="teacher") as pool:
                while session.fatal is None and session.one_pass(pool, concurrency):
                    pass  # every pass spends budget or ends, so this terminates
        finally:
            bar.close()
        if session.fatal is not None:
            raise session.fatal
        have = np.array([digest in answers for digest in hashes], dtype=bool)
        result_scores = np.stack([answers[h] for h, ok in zip(hashes, have) if ok]) if have.any() \
            else np.zeros((0, num_classes), np.float32)
        state = ledger.state
        return QueryResult(
            ids=np.asarray(ids)[have], scores=result_scores.astype(np.float32),
            teacher_calls=state.counted, teacher_outputs=state.count("answered"),
            teacher_lost=state.count("in_flight"), teacher_rejected=state.count("rejected"),
            new_calls=state.counted - calls_before, unanswered=int((~have).sum()), store=directory,
            usage=_usage_totals(directory, ledger),
        )


__all__ = ["run_query", "QueryResult", "TeacherRefused", "OutcomeUnknown", "input_hashes", "teacher_key"]
