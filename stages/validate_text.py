"""Validate the text model on the raw test texts: accuracy, ONNX vs PyTorch parity, latency, gates."""

from ckd.data import TestSet
from ckd.query import Queried
from ckd.stages.validate_text import gates, validate_text
from ckd.students.checkpoint import StudentCheckpoint
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("validate_text", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--queried", required=True)

    def body(args, params):
        return validate_text(
            params.validation,
            StudentCheckpoint.load(args.checkpoint),
            args.bundle,
            TestSet.load(args.test),
            Queried.load(args.queried),
        )

    run(
        "validate_text",
        p,
        body,
        argv,
        gate=lambda args, params, metrics: gates(params.validation, metrics, args.bundle),
    )


if __name__ == "__main__":
    main()
