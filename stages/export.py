"""Export the student to ONNX (dynamic batch axis, normalisation inside, metadata), its int8 model and the
serving bundle."""

from ckd.config import load_section
from ckd.pipeline import export_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("export", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--query-metrics", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--pool", required=True, help="pool inputs; those never sent to the teacher calibrate int8")
    p.add_argument("--selected", required=True)
    p.add_argument("--out-int8", required=True)
    p.add_argument("--out-bundle", required=True, help="the serving bundle's folder (Triton, KServe, MLServer)")
    args = p.parse_args(argv)
    run("export", lambda: export_stage(load_section("export", args.params), args.checkpoint, args.query_metrics,
                                       args.out, args.pool, args.selected, args.out_int8, args.out_bundle),
        args.metrics)


if __name__ == "__main__":
    main()
