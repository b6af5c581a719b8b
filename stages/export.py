"""Export the student to ONNX with a dynamic batch axis, normalisation inside and metadata."""

from ckd.config import load_section
from ckd.pipeline import export_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("export", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--query-metrics", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    run("export", lambda: export_stage(load_section("export", args.params), args.checkpoint, args.query_metrics,
                                       args.out), args.metrics)


if __name__ == "__main__":
    main()
