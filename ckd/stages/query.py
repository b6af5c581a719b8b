"""`query`: ask the teacher once about the selected inputs, under the budget ledger (`ckd.query`)."""

from __future__ import annotations

import logging

from ckd.data import Pool, Selection
from ckd.errors import CkdError
from ckd.query import Queried, run_query
from ckd.teachers import build_teacher
from ckd.teachers.base import TeacherSettings

log = logging.getLogger(__name__)


def query(teacher: TeacherSettings, pool: Pool, selection: Selection, progress: bool = True) -> tuple[Queried, dict]:
    where = getattr(selection, "path", "the selection")
    if len(selection.ids) > teacher.budget:
        raise CkdError(
            f"{where}: {len(selection.ids)} samples selected but teacher.budget is {teacher.budget}; "
            "re-run the sample stage"
        )
    rows = pool.rows(selection.ids, where)
    backend = build_teacher(teacher)
    result = run_query(
        backend,
        selection.ids,
        pool.x[rows],
        pool.num_classes,
        teacher.budget,
        teacher.store,
        teacher.batch_size,
        progress,
    )
    selected = len(selection.ids)
    if len(result.ids) < teacher.min_answered * selected:
        raise CkdError(
            f"teacher.min_answered={teacher.min_answered}: only {len(result.ids)} of {selected} selected samples "
            f"have an answer; teacher.budget={teacher.budget} is spent ({result.calls_spent_total} counted in the "
            f"store {result.store}, {result.teacher_lost} lost); raise teacher.budget to at least "
            f"{result.calls_spent_total + result.unanswered} or go back to the selection already paid for "
            "(seed, data.*)"
        )
    if result.unanswered:
        log.warning(
            "%d selected samples have no answer: their calls were lost and teacher.budget=%d is spent; "
            "training goes on without them (raise teacher.budget to ask again)",
            result.unanswered,
            teacher.budget,
        )
    queried = Queried(
        ids=result.ids,
        scores=result.scores,
        selected=selected,
        budget=teacher.budget,
        calls_this_run=result.calls_this_run,
        calls_spent_total=result.calls_spent_total,
        teacher_outputs=result.teacher_outputs,
        teacher_lost=result.teacher_lost,
    )
    # Two different figures: what this run paid, and what the store has spent in total (a lowered budget can
    # sit below the latter without any overspend: the spending happened under the budget of its time).
    metrics = {
        "calls_this_run": result.calls_this_run,
        "calls_spent_total": result.calls_spent_total,
        "budget": teacher.budget,
        "budget_remaining": max(0, teacher.budget - result.calls_spent_total),
        "teacher_spent": result.teacher_spent,
        "teacher_outputs": result.teacher_outputs,
        "teacher_lost": result.teacher_lost,
        "teacher_rejected": result.teacher_rejected,
        "selected": selected,
        "answered_selected": int(len(result.ids)),
        "unanswered": result.unanswered,
        "store": result.store,
        "fresh_store": result.fresh_store,
    }
    return queried, metrics
