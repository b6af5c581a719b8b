"""Train the student (student.method) on the comparative data, selecting on validation data only."""

from ckd.comparative import ComparativeSet
from ckd.data import TestSet
from ckd.metrics import write_training_log
from ckd.stages.train import train
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("train", __doc__)
    p.add_argument("--data", required=True, help="the comparative data set (.npz)")
    p.add_argument("--out", required=True, help="the student checkpoint")
    p.add_argument("--log-dir", required=True, help="DVCLive's folder: the curves and this stage's metrics.json")
    p.add_argument("--test", default=None, help="the test split, for the curve of test accuracy (plot only)")
    p.set_defaults(metrics=None)  # this stage's metrics file is <log-dir>/metrics.json, next to its curves

    def body(args, params):
        test = TestSet.load(args.test) if args.test else None
        checkpoint, curve, metrics = train(params.student, ComparativeSet.load(args.data), test)
        checkpoint.save(args.out)
        write_training_log(args.log_dir, curve, metrics)
        return metrics

    run("train", p, body, argv)


if __name__ == "__main__":
    main()
