"""Fingerprint the data files the params name (SHA-256): `sample` depends on this, not on any one file."""

from ckd.stages.source import source_fingerprint
from stages._entry import run_fingerprint


def main(argv=None) -> None:
    run_fingerprint("source", __doc__, lambda params, cache: source_fingerprint(params.data, cache), argv)


if __name__ == "__main__":
    main()
