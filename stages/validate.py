"""Validate on the held-out test split: PyTorch vs ONNX Runtime fp32 and int8, parity, latency, the model
card, and the gates."""

from ckd.data import Pool, TestSet
from ckd.metrics import write_metrics
from ckd.model_card import write_model_card
from ckd.query import Queried
from ckd.stages import read_json
from ckd.stages.validate import decision_metrics, gates, model_card, validate
from ckd.students.checkpoint import StudentCheckpoint
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("validate", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--queried", required=True)
    p.add_argument("--source", default=None, help="the source stage's fingerprint (identifies the data)")
    p.add_argument("--pool", default=None, help="the pool (the held-out inputs of a source without labels)")
    p.add_argument("--int8", required=True)
    p.add_argument("--train-metrics", required=True)
    p.add_argument("--card-json", required=True)
    p.add_argument("--card-md", required=True)
    p.add_argument("--decision", default=None, help="where to write the decision metrics (dvc exp show's columns)")
    p.add_argument("--bundle", default=None, help="the export stage's bundle (a text source reads raw texts with it)")

    def body(args, params):
        checkpoint = StudentCheckpoint.load(args.checkpoint)
        queried = Queried.load(args.queried)
        metrics = validate(
            params.validation,
            params.teacher,
            checkpoint,
            args.onnx,
            args.int8,
            TestSet.load(args.test),
            queried,
            Pool.load(args.pool) if args.pool else None,
            args.bundle if params.data.text is not None else None,
        )
        if args.decision:
            write_metrics(args.decision, decision_metrics(metrics, queried))
        card = model_card(
            params,
            metrics,
            checkpoint,
            read_json(args.train_metrics),
            args.onnx,
            args.int8,
            read_json(args.source) if args.source else None,
        )
        write_model_card(card, args.card_json, args.card_md)
        return metrics

    run("validate", p, body, argv, gate=lambda args, params, metrics: gates(params.validation, metrics, args.onnx))


if __name__ == "__main__":
    main()
