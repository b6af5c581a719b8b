"""Great Expectations guards the teacher outputs before anything uses them."""

from ckd.config import load_section
from ckd.pipeline import check_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("check", __doc__)
    p.add_argument("--queried", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--query-metrics", required=True)
    p.add_argument("--docs", default=None, help="where to render Great Expectations Data Docs (HTML)")
    args = p.parse_args(argv)
    run("check", lambda: check_stage(load_section("teacher", args.params), args.queried, args.pool,
                                     args.query_metrics, args.docs), args.metrics)


if __name__ == "__main__":
    main()
