"""Export the complete text model: one ONNX graph (token ids -> encoder -> head) with its tokenizer beside it."""

from ckd.config import load_section
from ckd.text_pipeline import export_text_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("export_text", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--query-metrics", required=True)
    p.add_argument("--out", required=True, help="the bundle folder to write")
    args = p.parse_args(argv)
    run("export_text", lambda: export_text_stage(load_section("export", args.params), args.checkpoint,
                                                 args.query_metrics, args.out), args.metrics)


if __name__ == "__main__":
    main()
