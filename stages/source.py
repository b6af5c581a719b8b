"""Fingerprint the data files the params name (SHA-256): `sample` depends on this, not on any one file."""

from ckd.fingerprint import cache_beside
from ckd.stages import write_json
from ckd.stages.source import source_fingerprint
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("source", __doc__)
    p.add_argument("--out", required=True, help="the fingerprint (JSON)")

    def body(args, params):
        fingerprint = source_fingerprint(params.data, cache_beside(args.out))
        write_json(args.out, fingerprint)
        return {"files": len(fingerprint["files"]) + len(fingerprint["test_files"])}

    run("source", p, body, argv)


if __name__ == "__main__":
    main()
