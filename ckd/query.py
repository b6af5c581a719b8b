"""Ask the teacher once about the selected samples, under a hard budget, losing nothing paid for.

Answers and the budget live in the store (`ckd.store`, `teacher.store`), shared by every workspace,
experiment and clone that points at it. Answers are keyed by the teacher's canonical identity and each
input's SHA-256, so a change downstream, another experiment or a teammate never asks again, and two
teachers never mix. `teacher.budget` caps what the whole store has counted:

    spent_total = sum over the store's batches of |batch| (refused ones excepted) <= teacher.budget
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ckd.data.arrays import NpzArtifact
from ckd.errors import CkdError, TeacherError
from ckd.teachers.base import AnswerUnusable, OutcomeUnknown, ScoredAnswer, Teacher, TeacherRefused

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported by run_query: `check` and `build` read Queried only
    from ckd.store import Store

log = logging.getLogger(__name__)

WAIT_S = 0.2  # poll period while another run has our inputs in flight
WRITE_ATTEMPTS = 3


def input_hashes(x: np.ndarray) -> list[str]:
    """SHA-256 of each raw sample's float32 bytes (texts: their UTF-8 bytes): the key of its stored answer."""
    if x.dtype.kind in "US":
        return [hashlib.sha256(str(text).encode("utf-8")).hexdigest() for text in x]
    x = np.ascontiguousarray(x, dtype=np.float32)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in x.reshape(len(x), -1)]


@dataclass(frozen=True)
class QueryResult:
    ids: np.ndarray  # selected ids that have a stored answer, sorted as given
    scores: np.ndarray  # [len(ids), classes], the teacher's raw scores
    calls_this_run: int  # counted against the budget by this run
    calls_spent_total: int  # counted in the store in total (every teacher, run, experiment, clone): <= budget
    teacher_spent: int  # counted for this teacher in the store
    teacher_outputs: int  # answers stored for this teacher
    teacher_lost: int  # counted for this teacher, no answer (unknown outcome)
    teacher_rejected: int  # counted for this teacher, answered garbage, kept in quarantine
    unanswered: int  # selected samples still without an answer
    store: str  # where the store is (a password never shows)
    fresh_store: bool  # the store was created by this run: an explicit fresh start
    usage: dict[str, int] = field(default_factory=dict)  # what this run's answers cost (tokens), used or not
    score_sources: dict[str, int] = field(default_factory=dict)  # this run's answers by how scores were made


# The query stage's accounting that `export` and `validate` read from its metrics file (metrics/query.json).
ACCOUNTING = ("budget", "calls_this_run", "calls_spent_total", "teacher_outputs", "teacher_lost")


@dataclass
class Queried(NpzArtifact):
    """What the `query` stage hands on to `check`, `build` and `train`: the teacher's raw scores of the selected
    samples with an answer. Answers only: the accounting of the run that fetched them (calls paid by this run, spent
    in total, tokens) is the stage's metrics (`read_accounting`), so a query run that pays nothing (say after a
    change to the store's code) writes this file byte for byte again and `dvc repro` skips what reads only
    the answers (check, build, train)."""

    ids: np.ndarray  # selected pool ids with an answer, sorted as selected
    scores: np.ndarray  # [len(ids), classes]
    selected: int

    def __post_init__(self) -> None:
        self.selected = int(self.selected)
        if self.scores.ndim != 2 or len(self.scores) != len(self.ids):
            raise ValueError(f"scores {self.scores.shape} do not match {len(self.ids)} ids")

    @property
    def unanswered(self) -> int:
        """Selected samples without an answer (their calls were lost and the budget is spent)."""
        return self.selected - len(self.ids)


def read_accounting(path: str | Path) -> dict[str, Any]:
    """The query stage's metrics (`ACCOUNTING`, and an LLM teacher's `*_tokens_this_run`,
    `estimated_cost_this_run`), refused in one line naming the file when it is not that."""
    try:
        metrics = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise CkdError(f"{path}: not the query stage's metrics ({error}); run the query stage first") from None
    missing = [key for key in ACCOUNTING if not isinstance(metrics, dict) or key not in metrics]
    if missing:
        raise CkdError(f"{path}: not the query stage's metrics (no {', '.join(missing)}); run the query stage first")
    return dict(metrics)


def _check_answer(scores: np.ndarray, batch_size: int, num_classes: int) -> str | None:
    if not np.issubdtype(scores.dtype, np.floating):
        return f"scores have dtype {scores.dtype}, expected floats"
    if scores.shape != (batch_size, num_classes):
        return f"scores have shape {scores.shape}, expected {(batch_size, num_classes)}"
    return None


def _first_pending(hashes: list[str], answers: dict[str, np.ndarray]) -> list[int]:
    """Rows still without an answer; the same input selected twice is asked about once."""
    first_of: dict[str, int] = {}
    return [i for i, digest in enumerate(hashes) if digest not in answers and first_of.setdefault(digest, i) == i]


@dataclass(eq=False)  # a run's session is itself, not its fields
class _Session:
    """One run's asking: reserves before sending, stores on answer, keeps at most `concurrency` batches
    in flight. Store writes happen on this thread only; the teacher's calls run on worker threads."""

    teacher: Teacher
    store: Store
    run: str
    ids: Any
    x: Any
    hashes: Any
    num_classes: int
    budget: int
    batch_size: int
    bar: Any
    calls_this_run: int = 0
    usage: Counter[str] = field(default_factory=Counter)
    score_sources: Counter[str] = field(default_factory=Counter)
    fatal: CkdError | None = None
    spilled: list[Path] = field(default_factory=list)  # paid answers the store could not take, kept in these files

    def __post_init__(self) -> None:
        self.answers: dict[str, np.ndarray] = self.store.answers(self.teacher.identity, self.hashes)

    def ask(self, pool: ThreadPoolExecutor, concurrency: int) -> None:
        """Until every selected input has an answer, the budget is spent or a batch fails for good."""
        while self.fatal is None:
            pending = _first_pending(self.hashes, self.answers)
            if not pending:
                return
            held = self.store.held_elsewhere(self.teacher.identity, [self.hashes[i] for i in pending], self.run)
            free = [i for i in pending if self.hashes[i] not in held]
            sent = self.one_pass(pool, concurrency, free) if free and self.store.spent() < self.budget else 0
            self.answers.update(self.store.answers(self.teacher.identity, [self.hashes[i] for i in pending]))
            if sent == 0 and self.fatal is None:
                still = [self.hashes[i] for i in _first_pending(self.hashes, self.answers)]
                if still and self.store.held_elsewhere(self.teacher.identity, still, self.run):
                    time.sleep(WAIT_S)  # another run has these inputs in flight: its answer is ours too
                elif not still or self.store.spent() >= self.budget:
                    # The budget is spent and no other run has these in flight. Read once more: a batch that
                    # closed between the last read and that check is answered now, and its answers are ours.
                    self.answers.update(self.store.answers(self.teacher.identity, still))
                    return
                # else the holder's batch closed without an answer (its run died, or it was lost or refused):
                # ask again while budget remains

    def one_pass(self, pool: ThreadPoolExecutor, concurrency: int, rows: list[int]) -> int:
        """Ask once about `rows` (as the budget allows); return how many batches were sent."""
        chunks = [rows[i : i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        in_flight: dict[Future[Any], tuple[int, list[int]]] = {}
        sent = 0
        while chunks or in_flight:
            while chunks and len(in_flight) < concurrency and self.fatal is None:
                chunk = chunks.pop(0)
                ids, hashes = [int(self.ids[i]) for i in chunk], [self.hashes[i] for i in chunk]
                reservation = self.store.reserve(self.teacher.identity, self.run, ids, hashes, self.budget)
                if reservation is None:
                    if self.store.spent() >= self.budget:
                        chunks = []
                    continue  # answered or taken by another run meanwhile
                batch_rows = [chunk[p] for p in reservation.rows]
                self.calls_this_run += len(batch_rows)
                future = pool.submit(self.teacher.predict, self.x[batch_rows])  # reserved above: paid, then sent
                in_flight[future] = (reservation.batch, batch_rows)
                sent += 1
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:  # after a fatal error, only what is in flight is settled
                self._settle(future, *in_flight.pop(future))
        return sent

    def _fail(self, error: CkdError) -> CkdError:
        """Record the error that stops the run (the first one wins); return it."""
        self.fatal = self.fatal or error
        return self.fatal

    def _quarantine(self, batch: int, raw: str, problem: str, usage: dict[str, int] | None = None) -> None:
        """Keep a paid but unusable answer apart, with the teacher's words and its tokens, and stop the run."""
        self.store.mark_rejected(batch, problem, raw[:20000], usage or None)
        kept = f"raw answer kept in the store {self.store.location} (python -m ckd.ledger quarantine)"
        self._fail(TeacherError(f"teacher answered batch {batch} unusably: {problem}; {kept}"))

    def _add_usage(self, usage: dict[str, int]) -> None:
        self.usage.update({key: int(value) for key, value in usage.items()})

    def _settle(self, future: Future[Any], batch: int, rows: list[int]) -> None:
        usage: dict[str, int] = {}  # what this batch's answer cost (tokens), stored with it
        try:
            answer = future.result()
            if isinstance(answer, ScoredAnswer):
                usage = dict(answer.usage)
                self._add_usage(usage)
                self.score_sources.update(answer.sources)
                answer = answer.scores
            scores = np.asarray(answer)
        except TeacherRefused as refusal:
            self.store.mark_refused(batch, str(refusal))
            self.calls_this_run -= len(rows)
            self._fail(
                TeacherError(f"teacher refused batch {batch} (its {len(rows)} calls were given back): {refusal}")
            )
        except AnswerUnusable as unusable:
            self._add_usage(unusable.usage)
            self._quarantine(batch, str(unusable.raw), str(unusable), dict(unusable.usage))
        except OutcomeUnknown as unknown:
            # It may have been computed: it stays counted (lost); asked again later only while budget remains.
            self.store.mark_lost(batch, str(unknown)[:500])
            log.warning("batch %d: no answer (%s); its %d samples stay counted as lost", batch, unknown, len(rows))
        except Exception as error:
            self.store.mark_lost(batch, f"{type(error).__name__}: {error}"[:500])
            why = f"{type(error).__name__}: {next(iter(str(error).splitlines()), '')}"
            lost = f"its {len(rows)} samples stay counted as lost"
            self._fail(TeacherError(f"teacher call for batch {batch} failed ({why}); {lost}"))
        else:
            problem = _check_answer(scores, len(rows), self.num_classes)
            if problem is not None:
                numeric = scores.dtype != object  # numbers: their list; anything else: as numpy prints it
                raw = str(scores.tolist()) if numeric else str(scores)
                self._quarantine(batch, raw, problem, usage)
            else:
                hashes, scores = [self.hashes[i] for i in rows], scores.astype(np.float32)
                self._keep(batch, [int(self.ids[i]) for i in rows], hashes, scores, usage)
                self.answers.update(zip(hashes, scores))
                self.bar.update(len(rows))

    def _keep(self, batch: int, ids: list[int], hashes: list[str], scores: np.ndarray, usage: dict[str, int]) -> None:
        """Store a paid answer with its tokens; if the store will not take it, retry, then spill it and stop."""
        cause = ""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self.store.write_answers(batch, hashes, scores, usage or None)
                return
            except Exception as error:  # the database's own error: full disk, read-only file, lost server...
                cause = str(getattr(error, "orig", None) or error).splitlines()[0]
                time.sleep(0.2 * 2**attempt)
        from ckd.store.spill import spill

        failed = f"teacher.store {self.store.location}: cannot store the paid answer of batch {batch} ({cause})"
        try:
            path = spill(self.store, self.teacher.identity, batch, ids, hashes, scores, usage)
        except OSError as error:
            raise self._fail(CkdError(f"{failed} nor spill it ({error}); it stays counted as lost")) from None
        self.spilled.append(path)
        self._fail(CkdError(f"{failed}; it is kept in {path} and the next run imports it"))


FRESH_START = (
    "FRESH START: teacher.store {location} held no store: a new, empty one was created; teacher.budget={budget} "
    "starts from 0"
)


def run_query(
    teacher: Teacher,
    ids: np.ndarray,
    x: np.ndarray,
    num_classes: int,
    budget: int,
    store: str | Path | Store,
    batch_size: int = 32,
    progress: bool = True,
) -> QueryResult:
    """Ask `teacher` about the samples `ids` (raw inputs `x`) that have no stored answer yet.

    Each batch is reserved in the store before it is sent, at most `teacher.concurrency` in flight; inputs
    another live run has in flight are waited for. A batch whose outcome is unknown stays counted (lost) and
    is asked again only while budget remains, so the store's count never exceeds `budget`; the rest is
    `unanswered`."""
    from tqdm.auto import tqdm

    from ckd.store import Store, open_store
    from ckd.store.spill import import_spills

    teacher.check_fits(tuple(x.shape[1:]), num_classes)  # before anything is paid
    hashes = input_hashes(x)
    concurrency = max(1, int(getattr(teacher, "concurrency", 1)))
    # One request per input for an LLM: each reservation then covers exactly what one request may cost.
    batch_size = min(batch_size, int(getattr(teacher, "batch_limit", batch_size)))
    opened = store if isinstance(store, Store) else open_store(str(store))
    try:
        if opened.created_now:  # an absent file only: anything else there is damage
            log.warning(FRESH_START.format(location=opened.location, budget=budget))
        import_spills(opened)
        # Asking one by one about inputs an unfinished Batch API job carries would pay for them twice: stop first.
        jobs = {} if hasattr(teacher, "ask") else opened.unsettled_remote(teacher.identity)
        if jobs:
            raise TeacherError(
                f"teacher.api: {sum(map(len, jobs.values()))} inputs of this teacher are in {len(jobs)} Batch API "
                f"job(s) not collected yet ({', '.join(sorted(jobs)[:3])}); set teacher.api: batch to collect them "
                "(paid once), then ask the rest"
            )
        run = opened.open_run(teacher.identity, getattr(teacher, "description", teacher.identity))
        bar = tqdm(
            total=budget,
            initial=min(budget, opened.spent()),
            desc="teacher calls (store)",
            unit="sample",
            disable=not progress,
            dynamic_ncols=True,
        )
        session: _Session | None = None
        try:
            session = _Session(teacher, opened, run, ids, x, hashes, num_classes, budget, batch_size, bar)
            if hasattr(teacher, "ask"):  # an asynchronous backend (the OpenAI Batch API) submits and polls jobs
                teacher.ask(session)
            else:
                with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="teacher") as pool:
                    session.ask(pool, concurrency)
        except CkdError as error:
            kept = [str(path) for path in (session.spilled if session else []) if str(path) not in str(error)]
            if kept:  # the last line says where the paid answers are, whatever stopped the run after
                raise CkdError(
                    f"{error}; paid answers are kept in {', '.join(kept)} and the next run imports them"
                ) from None
            raise
        finally:
            bar.close()
            opened.close_run(run)
        assert session is not None
        if session.fatal is not None:
            raise session.fatal
        answers = session.answers
        wrong = next((h for h in hashes if h in answers and answers[h].shape != (num_classes,)), None)
        if wrong is not None:
            raise CkdError(
                f"teacher.store {opened.location}: the stored answer of input {wrong[:12]} has "
                f"{answers[wrong].shape[0]} classes, the data has {num_classes}: the teacher "
                f"{teacher.identity} answered other classes (point teacher.store at another store for this data)"
            )
        have = np.array([digest in answers for digest in hashes], dtype=bool)
        mine = opened.summary(teacher.identity)
        return QueryResult(
            ids=np.asarray(ids)[have],
            scores=np.array([answers[h] for h in hashes if h in answers], np.float32).reshape(-1, num_classes),
            calls_this_run=session.calls_this_run,
            calls_spent_total=opened.spent(),
            teacher_spent=mine.spent,
            teacher_outputs=mine.answered,
            teacher_lost=mine.lost,  # this run's batches are closed; another live run's in flight are not lost
            teacher_rejected=mine.rejected,
            unanswered=int((~have).sum()),
            store=opened.location,
            fresh_store=opened.created_now,
            usage=session.usage,
            score_sources=session.score_sources,
        )
    finally:
        if opened is not store:
            opened.close()


__all__ = ["run_query", "QueryResult", "Queried", "TeacherRefused", "OutcomeUnknown", "input_hashes"]
