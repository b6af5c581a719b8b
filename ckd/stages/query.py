"""`query`: ask the teacher once about the selected inputs, under the budget ledger (`ckd.query`)."""

from __future__ import annotations

import argparse
import logging
import math
from typing import Any

from ckd.config import Params
from ckd.data import Pool, Selection
from ckd.errors import CkdError
from ckd.preflight import check_student_for
from ckd.query import FRESH_START, Queried, run_query
from ckd.stages._entry import parser, run
from ckd.teachers import build_teacher
from ckd.teachers.base import TeacherSettings

log = logging.getLogger(__name__)


def query(
    teacher: TeacherSettings, pool: Pool, selection: Selection, progress: bool = True
) -> tuple[Queried, dict[str, Any]]:
    rows = pool.rows(selection.ids, getattr(selection, "path", "the selection"))
    backend = build_teacher(teacher)
    x = (pool.x if pool.text is None else pool.text)[rows]  # a text teacher reads the texts, not their embeddings
    result = run_query(
        backend, selection.ids, x, pool.num_classes, teacher.budget, teacher.store, teacher.batch_size, progress
    )
    selected = len(selection.ids)
    if len(result.ids) < teacher.min_answered * selected:
        advice = budget_advice(teacher.min_answered, result.calls_spent_total, len(result.ids), selected)
        raise CkdError(
            f"teacher.min_answered={teacher.min_answered}: only {len(result.ids)} of {selected} selected samples "
            f"have an answer; teacher.budget={teacher.budget} is spent ({result.calls_spent_total} counted in the "
            f"store {result.store} by every teacher and input over its life, {result.teacher_lost} lost); "
            f"{advice}, go back to the "
            "selection already paid for (seed, data.*), or give a new teacher a store of its own (teacher.store)"
        )
    if result.unanswered:
        log.warning(
            "%d selected samples have no answer: teacher.budget=%d is spent (%d counted in the store, %d of them "
            "lost calls); training goes on without them (to ask again: %s)",
            result.unanswered,
            teacher.budget,
            result.calls_spent_total,
            result.teacher_lost,
            budget_advice(1.0, result.calls_spent_total, len(result.ids), selected),
        )
    usage = usage_metrics(result.usage, teacher)
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
        **usage,
        **{f"score_source_{source}": n for source, n in sorted(result.score_sources.items())},
    }
    return Queried(ids=result.ids, scores=result.scores, selected=selected), metrics


def budget_advice(min_answered: float, spent: int, answered: int, selected: int) -> str:
    """Keep this selection (`data.selection_size`) and raise the cap by the answers it lacks, one call each:
    B = spent + ceil(min_answered * selected) - answered (more only if calls are lost on the way)."""
    least = spent + max(1, math.ceil(min_answered * selected) - answered)
    return f"set data.selection_size: {selected} (keeps this selection) and raise teacher.budget to at least {least}"


def usage_metrics(usage: dict[str, int], teacher: TeacherSettings) -> dict[str, Any]:
    """Tokens this run's calls spent (answers used or quarantined) and their estimated cost at the backend's
    `price_per_1k_*_tokens`; empty for a teacher that reports no usage."""
    if not usage:
        return {}
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    cost = (
        prompt / 1000 * getattr(teacher, "price_per_1k_input_tokens", 0.0)
        + completion / 1000 * getattr(teacher, "price_per_1k_output_tokens", 0.0)
    ) * getattr(teacher, "price_factor", 1.0)  # the Batch API's discount (teacher.api: batch)
    return {
        "prompt_tokens_this_run": prompt,
        "completion_tokens_this_run": completion,
        "estimated_cost_this_run": round(cost, 6),
    }


def main(argv: list[str] | None = None) -> None:
    p = parser("query", __doc__)
    p.add_argument("--pool", required=True)
    p.add_argument("--selected", required=True)
    p.add_argument("--out", required=True, help="the teacher scores of the selected samples (.npz)")

    def body(args: argparse.Namespace, params: Params) -> dict[str, Any]:
        pool, selection = Pool.load(args.pool), Selection.load(args.selected)
        # train's own checks, again where the paying starts, unless sample checked these very settings
        check_student_for(params.student, pool, selection.checked_student)
        queried, metrics = query(params.teacher, pool, selection)
        queried.save(args.out)
        return metrics

    def say_fresh_start(args: argparse.Namespace, params: Params, metrics: dict[str, Any]) -> None:
        """The stage's last line when this run created the store (said at its start too): a fresh start is seen."""
        if metrics.get("fresh_store"):
            log.warning(FRESH_START.format(location=metrics["store"], budget=metrics["budget"]))

    run("query", p, body, argv, gate=say_fresh_start)


if __name__ == "__main__":
    main()
