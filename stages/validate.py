"""Validate on the held-out test split: PyTorch vs ONNX Runtime, parity, latency, and the gates."""

from ckd.config import load_section
from ckd.pipeline import validate_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("validate", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--query-metrics", required=True)
    args = p.parse_args(argv)
    run("validate", lambda: validate_stage(load_section("validate", args.params), load_section("teacher", args.params),
                                           args.checkpoint, args.onnx, args.test, args.query_metrics, args.metrics),
        None)


if __name__ == "__main__":
    main()
