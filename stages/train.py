"""Train the student (model selection on validation data drawn from the queried samples)."""

from ckd.comparative import ComparativeSet
from ckd.stages.train import train, write_curve
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("train", __doc__)
    p.add_argument("--data", required=True, help="the comparative data set (.npz)")
    p.add_argument("--out", required=True, help="the student checkpoint")
    p.add_argument("--curve", required=True, help="the training curve (.csv, for dvc plots)")

    def body(args, params):
        checkpoint, curve, metrics = train(params.student, ComparativeSet.load(args.data))
        checkpoint.save(args.out)
        write_curve(args.curve, curve)
        return metrics

    run("train", p, body, argv)


if __name__ == "__main__":
    main()
