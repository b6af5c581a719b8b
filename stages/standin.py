"""Train the embedded demo's stand-in teacher (only when teacher.model is under models/standin/)."""

import json
import logging
from pathlib import Path

from ckd.stages.standin import (
    NOTE_FILE,
    RECORD_FILE,
    STANDIN_FILE,
    kept_metrics,
    standin,
    standin_used,
    training_key,
    write_note,
)
from stages._entry import parser, run

log = logging.getLogger("ckd.standin")


def main(argv=None) -> None:
    p = parser("standin", __doc__)
    p.add_argument("--source", required=True, help="the data's fingerprint (the source stage's output)")
    p.add_argument("--out", required=True, help="the folder of the stand-in (models/standin)")

    def body(args, params):
        out = Path(args.out)
        if not standin_used(params.teacher):
            write_note(out, params.teacher)
            return {"trained": 0}
        key = training_key(params.data, params.teacher.standin, params.split_seed, Path(args.source).read_text())
        metrics = kept_metrics(out, key)
        if metrics is not None:
            log.info("the stand-in in %s was trained from the same data and settings: kept", out)
            return metrics
        teacher, metrics = standin(params.data, params.teacher.standin, params.split_seed)
        out.mkdir(parents=True, exist_ok=True)
        (out / NOTE_FILE).unlink(missing_ok=True)
        teacher.save(out / STANDIN_FILE)
        (out / RECORD_FILE).write_text(json.dumps({"key": key, "metrics": metrics}, indent=2, sort_keys=True) + "\n")
        return metrics

    run("standin", p, body, argv)


if __name__ == "__main__":
    main()
