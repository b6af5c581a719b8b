"""Export the student to ONNX (dynamic batch axis, normalisation inside, metadata), its int8 model and the
serving bundle (a text source: the whole text model, tokenizer beside it; an LLM teacher's label words as the
class names)."""

from ckd.data import Pool, Selection
from ckd.query import Queried
from ckd.stages.export import export
from ckd.students.checkpoint import StudentCheckpoint
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("export", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--queried", required=True, help="the query stage's output (budget and calls for the metadata)")
    p.add_argument("--out", required=True)
    p.add_argument("--pool", required=True, help="pool inputs; those never sent to the teacher calibrate int8")
    p.add_argument("--selected", required=True)
    p.add_argument("--out-int8", required=True)
    p.add_argument("--out-bundle", required=True, help="the serving bundle's folder (Triton, KServe, MLServer; text)")
    run(
        "export",
        p,
        lambda args, params: export(
            params.export,
            StudentCheckpoint.load(args.checkpoint),
            Queried.load(args.queried),
            Pool.load(args.pool),
            Selection.load(args.selected),
            args.out,
            args.out_int8,
            args.out_bundle,
            text=params.data.text is not None,
            label_words=getattr(params.teacher, "label_words", None),  # an LLM teacher's words name the classes
        ),
        argv,
    )


if __name__ == "__main__":
    main()
