"""Train the student (model selection on validation data drawn from the queried samples)."""

from ckd.config import load_section
from ckd.pipeline import train_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("train", __doc__)
    p.add_argument("--data", required=True, help="the comparative data set (.npz)")
    p.add_argument("--out", required=True, help="the student checkpoint")
    p.add_argument("--curve", required=True, help="the training curve (.csv, for dvc plots)")
    args = p.parse_args(argv)
    run("train", lambda: train_stage(load_section("student", args.params), args.data, args.out, args.curve),
        args.metrics)


if __name__ == "__main__":
    main()
