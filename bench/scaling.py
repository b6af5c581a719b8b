"""Each stage's time against the budget N and the pool size, on synthetic MNIST-sized inputs.

    python -m bench.scaling [--budgets 100,1000,10000 --budget-pool 20000]
                                [--pools 1000,10000,100000 --pool-budget 500] [--out bench/scaling]

Runs the pipeline's stage functions (`ckd.stages`) in one process on a synthetic data set
(28x28 inputs, 10 classes, a fixed 1000-sample test split) with a linear ONNX teacher: first N
growing at a fixed pool, then the pool growing at a fixed N. The student trains a fixed number of
steps (`--steps`), as `student.steps` fixes it in the pipeline. Also times `data.selection: kcenter`
in the sample stage where N x pool is small enough to finish (`--kcenter-max-work`). The last columns
give each stage's growth exponent (log time / log size between the smallest and largest point).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

STAGES = ("sample", "query", "check", "build", "train", "export", "validate")


def synthetic_source(path: Path, pool: int, test: int, seed: int = 0) -> None:
    from ckd.data.arrays import write_arrays

    rng = np.random.default_rng(seed)
    n = pool + test
    labels = rng.integers(0, 10, size=n)
    prototypes = rng.integers(0, 256, size=(10, 28, 28)).astype(np.float32)
    x = np.clip(prototypes[labels] + rng.normal(0, 60, size=(n, 28, 28)), 0, 255).astype(np.uint8)
    write_arrays(path, x=x, y=labels)


def linear_teacher(path: Path, seed: int = 0) -> None:
    import torch

    from ckd.export import export_onnx

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    export_onnx(model, (28, 28), path, opset=17, metadata={})


def one_point(
    root: Path, pool: int, budget: int, test: int, steps: int, selection: str = "random", only_sample: bool = False
) -> dict[str, float]:
    from bench.run import ask_teacher
    from ckd.config import validate_all, with_overrides
    from ckd.stages.export import export
    from ckd.stages.sample import sample
    from ckd.stages.train import train
    from ckd.stages.validate import validate

    root.mkdir(parents=True, exist_ok=True)
    source = root / "source.npz"
    synthetic_source(source, pool, test)
    teacher_model = root.parent / "teacher.onnx"
    if not teacher_model.exists():
        linear_teacher(teacher_model)
    params = with_overrides(validate_all({}), {
        "data.source": str(source), "data.test_size": test, "data.selection": selection,
        "teacher.model": str(teacher_model), "teacher.budget": budget, "teacher.batch_size": 256,
        "teacher.store": str(root / "store"), "student.steps": steps, "student.lr": [0.003],
        "student.eval_every": max(1, steps // 4), "student.refit": False, "student.device": "cpu",
        "validate.min_accuracy": 0.0, "validate.latency_runs": 20,
    })  # fmt: skip
    seconds: dict[str, float] = {}

    def timed(stage, call):
        start = time.perf_counter()
        result = call()
        seconds[stage] = round(time.perf_counter() - start, 3)
        return result

    if only_sample:
        timed("sample", lambda: sample(params.data, budget, 0, 0))
        return seconds
    stages = ask_teacher(params, timed=timed)  # the benchmark's one chain: sample, query, check, build
    pool_set, test_set, selection_set = stages["pool"], stages["test"], stages["selection"]
    queried, accounting, comparative = stages["queried"], stages["accounting"], stages["comparative"]
    checkpoint, _, _ = timed("train", lambda: train(params.student, comparative, progress=False))
    onnx, int8 = root / "student.onnx", root / "student.int8.onnx"
    timed(
        "export",
        lambda: export(params.export, checkpoint, accounting, pool_set, selection_set, onnx, int8, root / "bundle"),
    )
    timed(
        "validate",
        lambda: validate(params.validation, params.teacher, checkpoint, onnx, int8, test_set, queried, accounting),
    )
    return seconds


def exponent(points: list[tuple[int, float]]) -> float | None:
    (x0, y0), (x1, y1) = points[0], points[-1]
    if y0 <= 0 or y1 <= 0 or x1 == x0:
        return None
    return round(math.log(y1 / y0) / math.log(x1 / x0), 2)


def markdown(rows: list[dict], title: str, key: str) -> str:
    head = f"| {key} | " + " | ".join(STAGES) + " |"
    lines = [f"#### {title}", "", head, "|" + "---|" * (len(STAGES) + 1)]
    for row in rows:
        lines.append(f"| {row[key]:,} | " + " | ".join(str(row["seconds"].get(s, "")) for s in STAGES) + " |")
    growth = [exponent([(r[key], r["seconds"][s]) for r in rows]) for s in STAGES]
    lines.append("| growth exponent | " + " | ".join("" if g is None else str(g) for g in growth) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.strip().splitlines()[0])
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    parser.add_argument("--budgets", type=ints, default=[100, 1000, 10000])
    parser.add_argument("--budget-pool", type=int, default=20000, help="the pool size while N grows")
    parser.add_argument("--pools", type=ints, default=[1000, 10000, 100000])
    parser.add_argument("--pool-budget", type=int, default=500, help="N while the pool grows (below the smallest pool)")
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--kcenter-max-work", type=float, default=2e7, help="largest N x pool timed for kcenter")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    report: dict = {
        "budget_pool": args.budget_pool,
        "pool_budget": args.pool_budget,
        "steps": args.steps,
        "test_size": args.test_size,
        "by_budget": [],
        "by_pool": [],
        "kcenter_sample": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one_point(root / "warmup", 500, 50, 100, 10)  # imports and first calls, not counted
        for budget in args.budgets:
            seconds = one_point(root / f"n{budget}", args.budget_pool, budget, args.test_size, args.steps)
            report["by_budget"].append({"budget": budget, "pool": args.budget_pool, "seconds": seconds})
            print(json.dumps(report["by_budget"][-1]), flush=True)
        for pool in args.pools:
            seconds = one_point(root / f"p{pool}", pool, args.pool_budget, args.test_size, args.steps)
            report["by_pool"].append({"pool": pool, "budget": args.pool_budget, "seconds": seconds})
            print(json.dumps(report["by_pool"][-1]), flush=True)
        for pool in args.pools:
            for budget in args.budgets:
                if budget <= pool and budget * pool <= args.kcenter_max_work:
                    seconds = one_point(
                        root / f"k{pool}-{budget}",
                        pool,
                        budget,
                        args.test_size,
                        args.steps,
                        selection="kcenter",
                        only_sample=True,
                    )
                    report["kcenter_sample"].append({"pool": pool, "budget": budget, "seconds": seconds["sample"]})
                    print(json.dumps(report["kcenter_sample"][-1]), flush=True)
    text = (
        markdown(report["by_budget"], f"Seconds by budget N (pool {args.budget_pool:,})", "budget")
        + "\n"
        + markdown(report["by_pool"], f"Seconds by pool size (N = {args.pool_budget:,})", "pool")
        + "\n"
        + "#### kcenter selection (sample stage), seconds\n\n| pool | N | seconds |\n|---|---|---|\n"
        + "".join(f"| {r['pool']:,} | {r['budget']:,} | {r['seconds']} |\n" for r in report["kcenter_sample"])
    )
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
