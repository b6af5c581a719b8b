"""Train the embedded default's stand-in teacher and export it to ONNX (not a teacher call)."""

from ckd.stages.teacher import teacher
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("teacher", __doc__)
    p.add_argument("--out", required=True, help="the ONNX teacher to write")

    def body(args, params):
        standin, metrics = teacher(params.data, params.teacher.standin, params.split_seed)
        standin.save(args.out)
        return metrics

    run("teacher", p, body, argv)


if __name__ == "__main__":
    main()
