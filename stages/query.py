"""Ask the teacher once about the selected samples, under the hard budget, keeping every paid answer."""

from ckd.data import Pool, Selection
from ckd.preflight import check_student_for
from ckd.stages.query import query, say_fresh_start
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("query", __doc__)
    p.add_argument("--pool", required=True)
    p.add_argument("--selected", required=True)
    p.add_argument("--out", required=True, help="the teacher scores of the selected samples (.npz)")

    def body(args, params):
        pool = Pool.load(args.pool)
        check_student_for(params.student, pool)  # train's own checks, again where the paying starts
        queried, metrics = query(params.teacher, pool, Selection.load(args.selected))
        queried.save(args.out)
        return metrics

    run("query", p, body, argv, gate=lambda args, params, metrics: say_fresh_start(metrics))


if __name__ == "__main__":
    main()
