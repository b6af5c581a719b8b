"""Validate on the held-out test split: PyTorch vs ONNX Runtime fp32 and int8, parity, latency, the model
card, and the gates."""

from ckd.config import load_params, load_section
from ckd.pipeline import validate_stage
from stages._entry import parser, run


# The params the model card records (dvc.yaml lists the same keys for this stage).
CARD_SECTIONS = ("seed", "data", "teacher", "comparative", "student", "export", "validate")


def card_params(path: str) -> dict:
    params = load_params(path)
    return {name: params[name] for name in CARD_SECTIONS if name in params}


def main(argv=None) -> None:
    p = parser("validate", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--query-metrics", required=True)
    p.add_argument("--int8", required=True)
    p.add_argument("--train-metrics", required=True)
    p.add_argument("--card-json", required=True)
    p.add_argument("--card-md", required=True)
    args = p.parse_args(argv)
    run("validate", lambda: validate_stage(load_section("validate", args.params), load_section("teacher", args.params),
                                           args.checkpoint, args.onnx, args.test, args.query_metrics, args.metrics,
                                           args.int8, args.train_metrics, card_params(args.params),
                                           args.card_json, args.card_md),
        None)


if __name__ == "__main__":
    main()
