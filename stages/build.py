"""Build the comparative data set: groups of k positives and k negatives over the queried samples."""

from ckd.config import load_section, load_seed
from ckd.pipeline import build_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("build", __doc__)
    p.add_argument("--queried", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    run("build", lambda: build_stage(load_section("comparative", args.params),
                                     load_section("teacher", args.params).scores, load_seed(args.params),
                                     args.queried, args.pool, args.out), args.metrics)


if __name__ == "__main__":
    main()
