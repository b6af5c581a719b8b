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
        pool, selection = Pool.load(args.pool), Selection.load(args.selected)
        # train's own checks, again where the paying starts, unless sample checked these very settings
        check_student_for(params.student, pool, selection.checked_student)
        queried, metrics = query(params.teacher, pool, selection)
        queried.save(args.out)
        return metrics

    run("query", p, body, argv, gate=lambda args, params, metrics: say_fresh_start(metrics))


if __name__ == "__main__":
    main()
