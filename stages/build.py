"""Build the comparative data set: groups of k positives and k negatives over the queried samples."""

from ckd.data import Pool
from ckd.query import Queried
from ckd.stages.build import build
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("build", __doc__)
    p.add_argument("--queried", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--out", required=True)

    def body(args, params):
        built, metrics = build(
            params.comparative, params.teacher.scores, params.seed, Queried.load(args.queried), Pool.load(args.pool)
        )
        built.save(args.out)
        return metrics

    run("build", p, body, argv)


if __name__ == "__main__":
    main()
