"""Train the embedded demo's stand-in teacher (only when teacher.model is under models/standin/)."""

from pathlib import Path

from ckd.stages.standin import NOTE_FILE, STANDIN_FILE, standin, standin_used, write_note
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("standin", __doc__)
    p.add_argument("--out", required=True, help="the folder of the stand-in (models/standin)")

    def body(args, params):
        out = Path(args.out)
        if not standin_used(params.teacher):
            write_note(out, params.teacher)
            return {"trained": 0}
        teacher, metrics = standin(params.data, params.teacher.standin, params.split_seed)
        out.mkdir(parents=True, exist_ok=True)
        (out / NOTE_FILE).unlink(missing_ok=True)
        teacher.save(out / STANDIN_FILE)
        return metrics

    run("standin", p, body, argv)


if __name__ == "__main__":
    main()
