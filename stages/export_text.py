"""Export the complete text model: one ONNX graph (token ids -> encoder -> head) with its tokenizer beside it."""

from ckd.query import Queried
from ckd.stages.export_text import export_text
from ckd.students.checkpoint import StudentCheckpoint
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("export_text", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--queried", required=True, help="the query stage's output (budget and calls for the metadata)")
    p.add_argument("--out", required=True, help="the bundle folder to write")
    run(
        "export_text",
        p,
        lambda args, params: export_text(
            params.export, StudentCheckpoint.load(args.checkpoint), Queried.load(args.queried), args.out
        ),
        argv,
    )


if __name__ == "__main__":
    main()
