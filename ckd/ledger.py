"""What the store holds and has spent, and moving paid answers in and out of it.

    python -m ckd.ledger summary  [--store S] [--budget N]   spent / lost / remaining, tokens: per teacher, in total
    python -m ckd.ledger check    [--store S]                the store's consistency rules
    python -m ckd.ledger export   [--store S] [--teacher T] --out answers.npz|answers.parquet
    python -m ckd.ledger import   [--store S] --from answers.npz|answers.parquet
    python -m ckd.ledger quarantine [--store S]              unusable answers kept apart, with their words

`--store` and `--params` go before or after the command. Only `import` creates a store where there is none.
`--store` and `--budget` default to `teacher.store` and `teacher.budget` of `--params` (params.yaml). Tokens are
those the store recorded with each answer (an LLM teacher's `usage`, answered and quarantined), over its whole
life; with `teacher.price_per_1k_*_tokens` in `--params`, the summary gives their estimated cost at those prices.
Imported answers count as spent in this store (they were paid for); inputs it already answered are skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ckd.errors import CkdError
from ckd.store import Store, open_store


def _defaults(args) -> None:
    params: dict = {}
    if Path(args.params).is_file():
        from ckd.config import load_params

        params = load_params(args.params).get("teacher") or {}
    args.store = args.store or params.get("store") or "teacher_outputs"
    if getattr(args, "budget", None) is None and "budget" in params:
        args.budget = params["budget"]
    args.prices = (
        float(params.get("price_per_1k_input_tokens") or 0.0),
        float(params.get("price_per_1k_output_tokens") or 0.0),
    )


def _one_teacher(store: Store, teacher: str | None) -> str:
    names = [s.teacher for s in store.summaries()]
    if teacher is not None:
        if teacher not in names:
            raise CkdError(
                f"--teacher: {teacher!r} has nothing in {store.location}; it has: {', '.join(names) or 'none'}"
            )
        return teacher
    if len(names) != 1:
        raise CkdError(f"--teacher: {store.location} holds {len(names)} teachers; name one of: {', '.join(names)}")
    return names[0]


def summary(store: Store, budget: int | None, prices: tuple[float, float] = (0.0, 0.0)) -> str:
    """`prices`: per 1k prompt and completion tokens, for an estimated cost (none when both are 0)."""
    rows = store.summaries()
    lines = [
        f"store {store.location}",
        "| teacher | spent | answered | rejected | lost | in flight | refused (given back) | prompt tokens "
        "| completion tokens |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        lines.append(
            f"| {s.teacher} | {s.spent} | {s.answered} | {s.rejected} | {s.lost} | {s.in_flight} | {s.refused} "
            f"| {s.prompt_tokens} | {s.completion_tokens} |"
        )
    spent = store.spent()
    tail = f"spent in total: {spent}"
    if budget is not None:
        tail += f" of teacher.budget={budget}; remaining {max(0, budget - spent)}"
        if spent > budget:
            imported = store.imported()
            why = (
                f"{imported} of them imported (paid elsewhere; imports count whatever the budget)"
                if imported
                else "spent under an earlier, larger budget"
            )
            tail += f" ({why}: nothing more will be asked until the budget exceeds {spent})"
    lines.append(tail)
    prompt, completion = sum(s.prompt_tokens for s in rows), sum(s.completion_tokens for s in rows)
    tokens = f"tokens in total (as the teachers reported them): {prompt} prompt + {completion} completion"
    if any(prices) and (prompt or completion):
        cost = prompt / 1000 * prices[0] + completion / 1000 * prices[1]
        tokens += (
            f"; estimated cost {cost:.6f} at {prices[0]} / {prices[1]} per 1k prompt / completion tokens "
            "(teacher.price_per_1k_*_tokens of --params)"
        )
    lines.append(tokens)
    return "\n".join(lines)


def export(store: Store, teacher: str, out: Path) -> int:
    hashes, scores = store.export(teacher)
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "teacher": [teacher] * len(hashes),
                "input_hash": hashes.tolist(),
                "scores": [row.tolist() for row in scores],
            }
        )
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
    batch = {
        "ids": [-1] * len(hashes),
        "hashes": list(hashes),
        "status": "answered",
        "scores": scores.astype(np.float32),
        "reason": f"imported from {source}",
    }
    return store.record_batches(teacher, f"imported from {source}", [batch], skip_known=True)


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
    commands.add_parser("check", parents=[shared])
    p = commands.add_parser("export", parents=[shared])
    p.add_argument("--teacher", default=None)
    p.add_argument("--out", required=True, type=Path)
    p = commands.add_parser("import", parents=[shared])
    p.add_argument("--from", dest="source", required=True, type=Path)
    commands.add_parser("quarantine", parents=[shared])
    args = parser.parse_args(argv)
    args.params = getattr(args, "params", "params.yaml")
    args.store = getattr(args, "store", None)
    try:
        _defaults(args)
        store = open_store(args.store, create=args.command == "import")
        try:
            if args.command == "summary":
                print(summary(store, args.budget, args.prices))
            elif args.command == "check":
                print(f"store {store.location}: consistent ({store.spent()} spent in total)")
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
