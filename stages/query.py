"""Ask the teacher once about the selected samples, under the hard budget, keeping every paid answer."""

from ckd.config import load_section
from ckd.pipeline import query_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("query", __doc__)
    p.add_argument("--pool", required=True)
    p.add_argument("--selected", required=True)
    p.add_argument("--out", required=True, help="the teacher scores of the selected samples (.npz)")
    args = p.parse_args(argv)
    run("query", lambda: query_stage(load_section("teacher", args.params), args.pool, args.selected, args.out),
        args.metrics)


if __name__ == "__main__":
    main()
