"""Great Expectations guards the teacher outputs before anything uses them."""

from ckd.data import Pool
from ckd.query import Queried
from ckd.stages.check import check
from stages._entry import parser, run


def main(argv=None) -> None:
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
