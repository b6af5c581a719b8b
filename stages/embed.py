"""Compute the frozen sentence encoder's outputs for every text once (free: no teacher call)."""

from ckd.stages.embed import embed
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("embed", __doc__)
    p.add_argument("--out", required=True, help="embeddings, labels and texts (.npz)")
    run("embed", p, lambda args, params: embed(params.data, args.out), argv)


if __name__ == "__main__":
    main()
