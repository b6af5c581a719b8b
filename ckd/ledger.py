"""What the store holds and has spent, and moving paid answers in and out of it.

    python -m ckd.ledger summary  [--store S] [--budget N]   spent / lost / remaining, tokens: per teacher, in total
    python -m ckd.ledger history  [--store S] [--last N]     one line per run: when, which teacher, what it spent
    python -m ckd.ledger check    [--store S]                the store's consistency rules
    python -m ckd.ledger export   [--store S] [--teacher T] --out answers.npz|answers.parquet
    python -m ckd.ledger export   [--store S] [--teacher T] --batches --out purse.csv|purse.parquet
    python -m ckd.ledger import   [--store S] --from answers.npz|answers.parquet
    python -m ckd.ledger quarantine [--store S]              unusable answers kept apart, with their words

`--store` and `--params` go before or after the command; only `import` creates a store where there is none.
`--store` and `--budget` default to `teacher.store` and `teacher.budget` of `--params` (params.yaml). Tokens are
those recorded with each answer (an LLM teacher's `usage`, answered and quarantined); with
`teacher.price_per_1k_*_tokens` in `--params`, summary, history and batch export add their estimated cost (Batch
API jobs at `teacher.batch_price_factor` of it). `export --batches` writes one row per batch (`BATCH_COLUMNS`);
`export` alone writes the answers `import` reads, which count as spent (paid for), inputs already answered skipped.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ckd.errors import CkdError
from ckd.store import Store, open_store
from ckd.store.base import STATUSES


@dataclass(frozen=True)
class Prices:
    """Per 1k prompt and completion tokens (`teacher.price_per_1k_*_tokens`), and the factor a batch sent
    through an asynchronous job (the OpenAI Batch API) pays of them (`teacher.batch_price_factor`)."""

    prompt: float = 0.0
    completion: float = 0.0
    job_factor: float = 0.5

    def cost(self, batch: dict[str, Any]) -> float:
        """A batch's (`Store.batch_rows`) estimated cost: its tokens, at `job_factor` if an asynchronous job sent it."""
        prompt, completion = batch["prompt_tokens"] or 0, batch["completion_tokens"] or 0
        cost = prompt / 1000 * self.prompt + completion / 1000 * self.completion
        return cost * (self.job_factor if batch["remote"] else 1.0)

    def __bool__(self) -> bool:
        return bool(self.prompt or self.completion)


def _one_teacher(store: Store, teacher: str | None) -> str:
    names = [s.teacher for s in store.summaries()]
    if teacher is not None and teacher not in names:
        raise CkdError(f"--teacher: {teacher!r} has nothing in {store.location}; it has: {', '.join(names) or 'none'}")
    if teacher is None and len(names) != 1:
        raise CkdError(f"--teacher: {store.location} holds {len(names)} teachers; name one of: {', '.join(names)}")
    return names[0] if teacher is None else teacher


def summary(store: Store, budget: int | None, prices: Prices | tuple[float, float] = Prices()) -> str:
    """`prices`: for an estimated cost (none when no price is set); a pair is per 1k prompt, completion tokens."""
    prices = prices if isinstance(prices, Prices) else Prices(*prices)
    rows = store.summaries()
    lines = [
        f"store {store.location}",
        "| teacher | name | spent | answered | rejected | lost | in flight | refused (given back) | prompt tokens "
        "| completion tokens |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        lines.append(
            f"| {s.teacher} | {s.description or '-'} | {s.spent} | {s.answered} | {s.rejected} | {s.lost} "
            f"| {s.in_flight} | {s.refused} | {s.prompt_tokens} | {s.completion_tokens} |"
        )
    spent = store.spent()
    tail = f"spent in total: {spent}"
    if budget is not None:
        tail += f" of teacher.budget={budget}; remaining {max(0, budget - spent)}"
        if spent > budget:
            why = "spent under an earlier, larger budget"
            if imported := store.imported():
                why = f"{imported} of them imported (paid elsewhere; imports count whatever the budget)"
            tail += f" ({why}: nothing more will be asked until the budget exceeds {spent})"
    lines.append(tail)
    prompt, completion = sum(s.prompt_tokens for s in rows), sum(s.completion_tokens for s in rows)
    tokens = f"tokens in total (as the teachers reported them): {prompt} prompt + {completion} completion"
    if prices and (prompt or completion):
        cost = sum(r["cost"] for r in batch_records(store, None, prices))
        tokens += (
            f"; estimated cost {cost:.6f} at {prices.prompt} / {prices.completion} per 1k prompt / completion "
            f"tokens (teacher.price_per_1k_*_tokens of --params; x{prices.job_factor} in Batch API jobs)"
        )
    lines.append(tokens)
    return "\n".join(lines)


BATCH_COLUMNS = (
    "batch",
    "time",
    "closed",
    "run",
    "teacher",
    "teacher_name",
    "status",
    "calls",
    "counted",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "reason",
    "job",
)


def _utc(seconds: float | None) -> str:
    return "" if seconds is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def batch_records(store: Store, teacher: str | None, prices: Prices) -> list[dict[str, Any]]:
    """One record per batch (`BATCH_COLUMNS`), oldest first; `counted`: what it counts against the budget."""
    names = {s.teacher: s.description for s in store.summaries()}
    return [
        {
            "batch": row["batch"],
            "time": _utc(row["created"]),
            "closed": _utc(row["closed"]),
            "run": row["run"],
            "teacher": row["teacher"],
            "teacher_name": names.get(row["teacher"], ""),
            "status": row["status"],
            "calls": row["n"],
            "counted": 0 if row["status"] == "refused" else row["n"],
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "cost": round(prices.cost(row), 9) if prices else None,
            "reason": row["reason"] or "",
            "job": (row["remote"] or "").split(":", 1)[-1],
        }
        for row in store.batch_rows(teacher)
    ]


def export_batches(store: Store, teacher: str | None, out: Path, prices: Prices) -> int:
    records = batch_records(store, teacher, prices)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        with out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=BATCH_COLUMNS)
            writer.writeheader()
            writer.writerows(records)
    elif out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), out)
    else:
        raise CkdError(f"--out: {out} must end in .csv or .parquet with --batches")
    return len(records)


def history(store: Store, prices: Prices, last: int | None = None) -> str:
    """One line per run (imports included), oldest first: when it started, the teacher it asked, the calls
    it counted by status, its tokens and their estimated cost."""
    runs: dict[str, dict[str, Any]] = {}
    for record in batch_records(store, None, prices):
        new = {"time": record["time"], "teachers": set(), "tokens": 0, "cost": 0.0, **dict.fromkeys(STATUSES, 0)}
        run = runs.setdefault(record["run"], new)
        run["teachers"].add(record["teacher_name"] or record["teacher"])
        run[record["status"]] += record["calls"]
        run["tokens"] += (record["prompt_tokens"] or 0) + (record["completion_tokens"] or 0)
        run["cost"] += record["cost"] or 0.0
    lines = [
        f"store {store.location}",
        "| started (UTC) | run | teacher | answered | rejected | lost | refused | in flight | tokens | cost |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    shown = list(runs.items())[-last:] if last else list(runs.items())
    for run_id, r in shown:
        cost = f"{r['cost']:.6f}" if prices else "-"
        lines.append(
            f"| {r['time']} | {run_id[:12]} | {', '.join(sorted(r['teachers']))} | {r['answered']} | {r['rejected']} "
            f"| {r['lost']} | {r['refused']} | {r['in_flight']} | {r['tokens']} | {cost} |"
        )
    lines.append(f"{len(runs)} runs; spent in total: {store.spent()}")
    return "\n".join(lines)


def export(store: Store, teacher: str, out: Path) -> int:
    hashes, scores = store.export(teacher)
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(dict(teacher=[teacher] * len(hashes), input_hash=hashes.tolist(), scores=scores.tolist()))
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
    elif out.suffix == ".npz":
        from ckd.data.arrays import write_arrays

        write_arrays(out, teacher=np.asarray(teacher), hashes=hashes, scores=scores)
    else:
        raise CkdError(f"--out: {out} must end in .npz or .parquet")
    return len(hashes)


def import_answers(store: Store, source: Path) -> int:
    if source.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(source).to_pydict()
        except Exception as error:
            raise CkdError(f"--from: {source} is not a readable Parquet file ({str(error).splitlines()[0]})") from None
        teachers, hashes, scores = table.get("teacher"), table.get("input_hash"), table.get("scores")
        if teachers is None or hashes is None or scores is None or len(set(teachers)) > 1:
            raise CkdError(f"--from: {source} needs columns teacher (one value), input_hash, scores")
        teacher, scores = (teachers[0] if teachers else ""), np.asarray(scores, np.float32)
    elif source.suffix == ".npz":
        from ckd.data.arrays import read_arrays

        arrays = read_arrays(source, required=("teacher", "hashes", "scores"))
        teacher, hashes, scores = str(arrays["teacher"]), [str(h) for h in arrays["hashes"]], arrays["scores"]
    else:
        raise CkdError(f"--from: {source} must be an .npz or a .parquet export")
    if len(hashes) == 0:
        return 0
    if scores.ndim != 2 or len(scores) != len(hashes) or not np.issubdtype(scores.dtype, np.floating):
        raise CkdError(f"--from: {source}: scores must be [answers, classes] floats, one row per input_hash")
    reason = f"imported from {source}"
    return store.record_answers(teacher, reason, list(hashes), scores.astype(np.float32), reason)


def main(argv: list[str] | None = None) -> None:
    # --params and --store are taken before the command and after it (`ledger check --store X`, as the damage
    # line advises); SUPPRESS keeps a value given before the command when the command repeats none.
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--params", default=argparse.SUPPRESS, help="the params file (default: params.yaml)")
    shared.add_argument("--store", default=argparse.SUPPRESS, help="a path (SQLite) or postgresql://USER@HOST:PORT/DB")
    parser = argparse.ArgumentParser(
        prog="python -m ckd.ledger", description=__doc__.strip().splitlines()[0], parents=[shared]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("summary", parents=[shared])
    p.add_argument("--budget", type=int, default=None)
    p = commands.add_parser("history", parents=[shared])
    p.add_argument("--last", type=int, default=None, help="only the last N runs")
    commands.add_parser("check", parents=[shared])
    p = commands.add_parser("export", parents=[shared])
    p.add_argument("--teacher", default=None)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--batches", action="store_true", help="one row per batch (the purse), not the answers")
    p = commands.add_parser("import", parents=[shared])
    p.add_argument("--from", dest="source", required=True, type=Path)
    commands.add_parser("quarantine", parents=[shared])
    args = parser.parse_args(argv)
    try:  # --store, --budget and the prices default to those of teacher in --params
        from ckd.config import load_params

        params_file = getattr(args, "params", "params.yaml")
        params = (load_params(params_file).get("teacher") or {}) if Path(params_file).is_file() else {}
        if getattr(args, "budget", None) is None and "budget" in params:
            args.budget = params["budget"]
        prices = Prices(
            float(params.get("price_per_1k_input_tokens") or 0.0),
            float(params.get("price_per_1k_output_tokens") or 0.0),
            float(params.get("batch_price_factor") or Prices.job_factor),
        )
        spec = getattr(args, "store", None) or params.get("store") or "teacher_outputs"
        store = open_store(spec, create=args.command == "import")
        try:
            if args.command == "summary":
                print(summary(store, args.budget, prices))
            elif args.command == "check":
                print(f"store {store.location}: consistent ({store.spent()} spent in total)")
            elif args.command == "history":
                print(history(store, prices, args.last))
            elif args.command == "export" and args.batches:
                teacher = _one_teacher(store, args.teacher) if args.teacher else None
                written = export_batches(store, teacher, args.out, prices)
                print(f"exported {written} batches of {teacher or 'every teacher'} to {args.out}")
            elif args.command == "export":
                teacher = _one_teacher(store, args.teacher)
                print(f"exported {export(store, teacher, args.out)} answers of {teacher} to {args.out}")
            elif args.command == "import":
                imported = import_answers(store, args.source)
                print(f"imported {imported} paid inputs from {args.source} into {store.location}")
            elif args.command == "quarantine":
                for batch, problem, raw in store.quarantined():
                    print(f"batch {batch}: {problem} | raw: {raw[:200]}")
        finally:
            store.close()
    except CkdError as error:
        print(f"ckd ledger: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
