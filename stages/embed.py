"""Compute the frozen sentence encoder's outputs for every text once (free: no teacher call)."""

from ckd.config import load_section
from ckd.text_pipeline import embed_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("embed", __doc__)
    p.add_argument("--out", required=True, help="embeddings, labels and texts (.npz)")
    args = p.parse_args(argv)
    run("embed", lambda: embed_stage(load_section("data", args.params), args.out), args.metrics)


if __name__ == "__main__":
    main()
