"""Load the data, split pool/test by seed, and choose exactly teacher.budget pool samples to send."""

from ckd.errors import ClassNamesNeeded
from ckd.preflight import check_student_for
from ckd.stages.sample import sample
from ckd.teachers.base import classes_for_unlabelled
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("sample", __doc__)
    p.add_argument("--pool", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--selected", required=True)
    p.add_argument("--embedded", default=None, help="the embed stage's output (read for a text source only)")

    def body(args, params):
        embedded = args.embedded if params.data.text is not None else None

        def split(data):
            return sample(data, params.teacher.budget, params.split_seed, params.seed, embedded)

        try:
            pool, test, selection, metrics = split(params.data)
        except ClassNamesNeeded as missing:  # no labels, no data.class_names: the teacher's declared classes
            names = classes_for_unlabelled(params.teacher, missing)
            pool, test, selection, metrics = split(params.data.model_copy(update={"class_names": names}))
        selection.checked_student = check_student_for(params.student, pool)  # train's own checks, before paying
        pool.save(args.pool), test.save(args.test), selection.save(args.selected)
        return metrics

    run("sample", p, body, argv)


if __name__ == "__main__":
    main()
