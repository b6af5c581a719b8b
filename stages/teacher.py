"""Train the embedded default's stand-in teacher and export it to ONNX (not a teacher call)."""

from ckd.config import load_section, load_seed
from ckd.pipeline import teacher_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("teacher", __doc__)
    p.add_argument("--out", required=True, help="the ONNX teacher to write")
    args = p.parse_args(argv)
    run("teacher", lambda: teacher_stage(load_section("data", args.params), load_section("teacher", args.params),
                                         load_seed(args.params), args.out), args.metrics)


if __name__ == "__main__":
    main()
