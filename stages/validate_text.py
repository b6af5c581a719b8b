"""Validate the text model on the raw test texts: accuracy, ONNX vs PyTorch parity, latency, gates."""

from ckd.config import load_section
from ckd.text_pipeline import validate_text_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("validate_text", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--query-metrics", required=True)
    args = p.parse_args(argv)
    # validate_text_stage writes the metrics itself, before the gates, so they survive a failed gate.
    run("validate_text", lambda: validate_text_stage(load_section("validate", args.params), args.checkpoint,
                                                     args.bundle, args.test, args.query_metrics, args.metrics), None)


if __name__ == "__main__":
    main()
