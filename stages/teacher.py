"""Fingerprint the teacher in use (the SHA-256 of its files): `query` depends on this, not on any one file."""

from ckd.stages.teacher import fingerprint
from stages._entry import run_fingerprint


def main(argv=None) -> None:
    run_fingerprint("teacher", __doc__, lambda params, cache: fingerprint(params.teacher, cache), argv)


if __name__ == "__main__":
    main()
