"""Train the student (model selection on validation data drawn from the queried samples)."""

from ckd.config import load_section
from ckd.pipeline import train_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("train", __doc__)
    p.add_argument("--data", required=True, help="the comparative data set (.npz)")
    p.add_argument("--out", required=True, help="the student checkpoint")
    p.add_argument("--log-dir", required=True, help="DVCLive's folder: the curves and this stage's metrics.json")
    p.add_argument("--test", default=None, help="the test split, for the curve of test accuracy (plot only)")
    args = p.parse_args(argv)
    run("train", lambda: train_stage(load_section("student", args.params), args.data, args.out, args.log_dir,
                                     args.test), None)


if __name__ == "__main__":
    main()
