"""`check`: Great Expectations on the teacher's answers before anything uses them (`ckd.quality`)."""

from __future__ import annotations

from typing import Any

from ckd.data import Pool
from ckd.quality import ScoreExpectations, check_teacher_outputs
from ckd.query import Queried
from ckd.stages._entry import parser, run
from ckd.teachers.base import TeacherSettings


def check(teacher: TeacherSettings, queried: Queried, pool: Pool, docs_dir: str | None = None) -> dict[str, Any]:
    spec = ScoreExpectations(
        expected_rows=queried.selected - queried.unanswered,
        budget=teacher.budget,
        pool_ids=pool.ids,
        num_classes=pool.num_classes,
        probabilities=teacher.scores == "probabilities",
    )
    return check_teacher_outputs(queried.ids, queried.scores, spec, getattr(queried, "path", "queried"), docs_dir)


def main(argv: list[str] | None = None) -> None:
    p = parser("check", __doc__)
    p.add_argument("--queried", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--docs", default=None, help="where to render Great Expectations Data Docs (HTML)")
    run(
        "check",
        p,
        lambda args, params: check(params.teacher, Queried.load(args.queried), Pool.load(args.pool), args.docs),
        argv,
    )


if __name__ == "__main__":
    main()
