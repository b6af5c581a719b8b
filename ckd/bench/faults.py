"""The table of fault cases for the `http` teacher against KServe's real model server on loopback.

    python -m ckd.bench.faults [--teacher models/teacher.onnx]

Each case runs the query through a fault-injecting proxy that counts the samples the server computed;
see `ckd.testing.faults` for the cases and the invariants.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ckd.data import load_source
from ckd.testing.faults import SCENARIOS, run_scenario, run_sigkill_case
from ckd.testing.servers import KServeTeacher


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ckd.bench.faults", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--teacher", default="models/teacher.onnx", help="an ONNX teacher taking digits [B, 1, 8, 8]")
    args = parser.parse_args(argv)
    digits = load_source("digits")
    ids, x = np.arange(200), digits.x[:200]
    rows = []
    with KServeTeacher(args.teacher) as url, tempfile.TemporaryDirectory() as scratch:
        for number, scenario in enumerate(SCENARIOS):
            workdir = Path(scratch) / f"case{number}"
            workdir.mkdir()
            rows.append(run_scenario(scenario, url, ids, x, digits.num_classes, workdir))
        workdir = Path(scratch) / "sigkill"
        workdir.mkdir()
        rows.append(run_sigkill_case(url, ids, x, digits.class_names, workdir))
    print("| case | server computed | budget | outputs stored | lost | unanswered | outcome | invariants |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['server_computed']} | {row['budget']} | {row['stored']} | {row['lost']} | "
              f"{row['unanswered']} | {row['outcome']} | {'kept' if not row['problems'] else '; '.join(row['problems'])} |")


if __name__ == "__main__":
    main()
