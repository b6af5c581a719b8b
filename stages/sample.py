"""Load the data, split pool/test by seed, and choose exactly teacher.budget pool samples to send."""

from ckd.config import load_section, load_seed
from ckd.pipeline import sample_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("sample", __doc__)
    p.add_argument("--pool", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--selected", required=True)
    p.add_argument("--embedded", default=None, help="the embed stage's output (text sources)")
    args = p.parse_args(argv)
    run("sample", lambda: sample_stage(load_section("data", args.params), load_section("teacher", args.params).budget,
                                       load_seed(args.params), args.pool, args.test, args.selected,
                                       args.embedded), args.metrics)


if __name__ == "__main__":
    main()
