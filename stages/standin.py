"""Train the embedded demo's stand-in teacher (only when teacher.model is under models/standin/)."""

from pathlib import Path

from ckd.stages.standin import standin_stage
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("standin", __doc__)
    p.add_argument("--source", required=True, help="the data's fingerprint (the source stage's output)")
    p.add_argument("--out", required=True, help="the folder of the stand-in (models/standin)")

    def body(args, params):
        return standin_stage(params, Path(args.out), Path(args.source).read_text())

    run("standin", p, body, argv)


if __name__ == "__main__":
    main()
