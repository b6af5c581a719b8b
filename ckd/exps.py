"""`make exps`: the experiments as one table that fits 120 columns, best first.

    python -m ckd.exps [--csv FILE] [--width 120] [dvc exp show options, e.g. -A]

Reads `dvc exp show --csv` (or a saved copy), keeps the decision metrics (`metrics/decision.json`: accuracy
or teacher agreement, calls spent, cost) and the settings that explain them (`student.method`, `teacher.budget`).
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from pathlib import Path

from ckd.errors import CkdError

# (header, candidate columns of `dvc exp show --csv`, in order of preference); a metric column may carry its
# file as a prefix (`metrics/decision.json:test_accuracy`) when two files share a key.
COLUMNS = (
    ("method", ("student.method",)),
    ("budget", ("teacher.budget",)),
    ("accuracy", ("onnx_test_accuracy", "onnx_teacher_agreement")),
    ("calls", ("calls_spent_total",)),
    ("cost", ("estimated_cost",)),
)
ACCURACY_OF = {"onnx_test_accuracy": "test", "onnx_teacher_agreement": "agreement"}


def _value(row: dict[str, str], names: tuple[str, ...]) -> tuple[str, str]:
    """(value, the column it came from) of the first candidate `row` has a value for."""
    for name in names:
        for column, value in row.items():
            if column is not None and (column == name or column.endswith(f":{name}")) and value not in ("", "-"):
                return value, name
    return "", ""


def _number(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    return f"{value:.4f}" if not value.is_integer() else str(int(value))


def table(exp_show_csv: str, width: int = 120) -> str:
    """The experiments of `dvc exp show --csv` output as a Markdown table no wider than `width`."""
    if not (rows := list(csv.DictReader(io.StringIO(exp_show_csv)))):
        raise CkdError("dvc exp show printed no experiment (run `dvc repro` or `dvc exp run` first)")
    records = []
    for row in rows:
        found = {header: _value(row, names) for header, names in COLUMNS}
        name = row.get("Experiment") or row.get("rev") or ""
        record = {header: _number(value) for header, (value, _) in found.items()}
        record["of"] = ACCURACY_OF.get(found["accuracy"][1], "")
        record["experiment"] = name if name not in ("", "-") else row.get("rev", "")
        records.append(record)
    records.sort(key=lambda r: -float(r["accuracy"]) if r["accuracy"] else float("inf"))
    headers = [h for h, _ in COLUMNS] + ["of", "experiment"]
    widths = {h: max(len(h), *(len(r[h]) for r in records)) for h in headers}
    fixed = sum(widths[h] + 3 for h in headers[:-1]) + 4  # "| " ... " |" borders
    widths["experiment"] = max(len("experiment"), min(widths["experiment"], width - fixed))

    def line(cells: dict[str, str]) -> str:
        return "| " + " | ".join(cells[h][: widths[h]].ljust(widths[h]) for h in headers) + " |"

    lines = [line({h: h for h in headers}), line({h: "-" * widths[h] for h in headers})]
    lines += [line(r) for r in records]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ckd.exps", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--csv", default=None, help="a saved `dvc exp show --csv` output instead of running it")
    parser.add_argument("--width", type=int, default=120)
    args, dvc_options = parser.parse_known_args(argv)
    try:
        if args.csv:
            text = Path(args.csv).read_text()
        else:
            shown = subprocess.run(["dvc", "exp", "show", "--csv", *dvc_options], capture_output=True, text=True)
            if shown.returncode != 0:
                raise CkdError(f"dvc exp show failed: {(shown.stderr.strip().splitlines() or ['?'])[-1]}")
            text = shown.stdout
        print(table(text, args.width))
    except CkdError as error:
        print(f"ckd exps: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
