"""Fingerprint the teacher in use (the SHA-256 of its files): `query` depends on this, not on any one file."""

from ckd.fingerprint import cache_beside
from ckd.stages import write_json
from ckd.stages.teacher import fingerprint
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("teacher", __doc__)
    p.add_argument("--out", required=True, help="the fingerprint (JSON)")

    def body(args, params):
        teacher = fingerprint(params.teacher, cache_beside(args.out))
        write_json(args.out, teacher)
        return {"files": len(teacher["files"])}

    run("teacher", p, body, argv)


if __name__ == "__main__":
    main()
