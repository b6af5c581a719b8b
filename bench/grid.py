"""The benchmark grid as Prefect tasks on a Dask cluster: one machine's cores, or many machines'.

    python -m bench.grid --dataset digits --workers 2                 # a local Dask cluster (processes)
    python -m bench.grid --dataset digits --address tcp://HOST:8786   # an existing Dask scheduler

It takes `python -m bench`'s options and builds its rows the same way (`bench.run`: params.yaml
or `--params` as the base, the benchmark's overrides on top, the very `ckd.stages` functions). Each
(budget N, seed, regime) cell runs sample, query, check and build in its own `ask` task, and each row
(cell, variant, student seed) trains in its own `train` task; Dask places them on its workers.

Unlike `python -m bench` (one ledger per cell), every `ask` task uses ONE answer store (`--store`,
default `<out>/teacher_outputs/grid`, i.e. `teacher.store`; a PostgreSQL URL for several machines): answers
are keyed by the teacher's identity and each input's hash, so an input selected by several cells, by a
re-run or by another grid pointed at the same store is paid for once, and the store's transactions keep
concurrent cells from paying twice for one input. `--store-budget` is the store's `teacher.budget`
(default: the sum of the cells' N, which covers every cell even without overlap).

Workers must see `--out` (and an SQLite store) at the same paths: one machine, or a shared file system.

Why Dask and not Ray: the grid is many independent, CPU-bound, sub-minute Python functions passing
file paths, which Dask's process workers run with nothing more than `pip install dask[distributed]
prefect-dask` (both pure Python, tens of MB); a cluster is `dask scheduler` + `dask worker` on any
machines with the project installed, or Kubernetes/SLURM/YARN through dask-kubernetes / dask-jobqueue.
Ray brings a ~200 MB binary runtime with its own object store and raylet per node, which pays off for
actors, GPU placement groups and large shared tensors, none of which the grid uses.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path
from typing import Any

from ckd.extras import MissingExtra, require

try:
    require("prefect", "the benchmark grid (python -m bench.grid)")
except MissingExtra as error:
    raise SystemExit(f"ckd bench grid: error: {error}") from None

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from bench.run import (
    FIELDS,
    _init_worker,
    _train_one,
    ask_teacher,
    base_params,
    job_overrides,
    parse_args,
    variant_overrides,
)
from ckd.config import Params, validate_all, with_overrides
from ckd.teachers.base import TeacherSettings


def _cells(args) -> list[tuple[int, int, str]]:
    seeds = range(max(args.seeds, args.science_seeds))
    return [(budget, seed, regime) for budget in args.budgets for seed in seeds for regime in args.regimes]


def _cell_params(base: dict, overrides: dict, budget: int, seed: int, regime: str, store: str) -> dict[str, Any]:
    """The cell's overrides: `bench.run`'s, with the one shared store."""
    return {**overrides, **job_overrides(validate_all(base), budget, seed, regime, Path(store))}


# DVC and the answer store own caching; Prefect caches nothing (STYLE.md: one owner of caching).
@task(name="ask", task_run_name="ask-n{budget}-s{seed}-{regime}", cache_policy=NO_CACHE)
def ask(
    base: dict, overrides: dict, budget: int, seed: int, regime: str, store: str, store_budget: int, out: str
) -> dict:
    """Select the cell's N inputs (sample) and get the teacher's answers from the shared store (query, check),
    paying only for inputs it has never answered; write the cell's comparative data set (build)."""
    cell = _cell_params(base, overrides, budget, seed, regime, store)
    params = with_overrides(validate_all(base), cell)
    # The store's budget caps the whole grid's calls; the cell still selects its own N (teacher.budget).
    paying: TeacherSettings = with_overrides(params, {"teacher.budget": store_budget}).teacher
    stages = ask_teacher(params, paying)
    comparative = stages["comparative"]
    data_path = Path(out) / "data" / f"n{budget}-s{seed}-{regime}.npz"
    comparative.save(data_path)
    return {
        "budget": budget,
        "seed": seed,
        "regime": regime,
        "data": str(data_path),
        "overrides": cell,
        "new_calls": stages["accounting"]["calls_this_run"],
        "store_calls": stages["accounting"]["calls_spent_total"],
    }


@task(name="train", cache_policy=NO_CACHE)
def train(job: dict) -> dict:
    _init_worker()  # one task per worker process and core
    return _train_one(job)


def grid_jobs(args, base: dict, cells: list[dict], test_path: str, name: str) -> list[dict]:
    """The rows of `bench.run.prepare`, one per (cell, variant, student seed)."""
    jobs = []
    for cell in cells:
        variants = args.variants if cell["seed"] < args.seeds else args.science_variants
        student_seeds = [cell["seed"] * args.student_seeds + k for k in range(args.student_seeds)]
        for variant, student_seed in itertools.product(variants, student_seeds):
            row = {
                **cell["overrides"],
                "student.seed": student_seed,
                **variant_overrides(variant, json.loads(args.method_args), args.augment),
            }
            jobs.append(
                {
                    "dataset": name,
                    "regime": cell["regime"],
                    "budget": cell["budget"],
                    "seed": cell["seed"],
                    "variant": variant,
                    "data": cell["data"],
                    "test": test_path,
                    "teacher_calls": cell["budget"],
                    "overrides": row,
                    "params": with_overrides(validate_all(base), row).as_dict(),
                }
            )
    return jobs


@flow(name="ckd-bench-grid")
def bench_grid(settings: dict, base: dict, overrides: dict, test_path: str, name: str) -> dict:
    """Ask for every cell, then train every row; only sequences the tasks."""
    args = argparse.Namespace(**settings)
    store_budget = args.store_budget or sum(budget for budget, _, _ in _cells(args))
    asked = [
        ask.submit(base, overrides, budget, seed, regime, args.store, store_budget, args.out)
        for budget, seed, regime in _cells(args)
    ]
    cells = [future.result() for future in asked]
    rows = [future.result() for future in train.map(grid_jobs(args, base, cells, test_path, name))]
    return {"cells": cells, "rows": rows, "store_budget": store_budget}


def prepare_teacher(args, base: Params, overrides: dict) -> tuple[dict, str, dict]:
    """The teacher (given, or the stand-in trained on the pool) and the test split, before the grid runs."""
    from ckd.stages.sample import sample
    from ckd.stages.standin import standin
    from ckd.teachers.onnx_file import OnnxFileTeacher
    from ckd.validate import accuracy

    out = Path(args.out)
    teacher_path = Path(args.teacher) if args.teacher else out / "teacher.onnx"
    if not teacher_path.exists():
        settings: TeacherSettings = base.teacher
        trained, _ = standin(base.data, settings.standin, base.split_seed, progress=False)
        trained.save(teacher_path)
    overrides = {**overrides, "teacher.model": str(teacher_path)}
    params = with_overrides(base, {**overrides, "data.split_seed": base.split_seed})
    pool, test, _, _ = sample(params.data, min(args.budgets), params.split_seed, params.seed)  # no teacher call
    test_path = out / "data" / "test.npz"
    test.save(test_path)
    name = "digits" if base.data.source == "digits" else Path(base.data.source).stem
    student = params.student
    info = {
        "dataset": name,
        "pool": len(pool.ids),
        "test": len(test.ids),
        "teacher_test_accuracy": accuracy(OnnxFileTeacher(str(teacher_path)).predict(test.x), test.labels),
        "steps": student.steps,
        "lr_grid": list(student.lr),
        "student": f"{student.arch} {json.dumps(student.arch_args)}",
        "group_size": base.comparative.group_size,
        "method_args": args.method_args,
        "augment": args.augment or "per recipe",
        "max_groups": base.comparative.max_groups,
        "selection": base.data.selection,
        "base_params": str(args.params),
        "overrides": overrides,
    }
    return overrides, str(test_path), info


def task_runner(address: str | None, workers: int):
    """A DaskTaskRunner on an existing scheduler (`address`), else on a local cluster of worker processes."""
    DaskTaskRunner = require("prefect_dask", "the benchmark grid on Dask").DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }
    )


def run_grid(args) -> dict:
    """`args`: `bench.run.parse_args`'s, with `address`, `store` and `store_budget`."""
    base, overrides = base_params(args)
    args.out.mkdir(parents=True, exist_ok=True)
    args.store = args.store or str(args.out / "teacher_outputs" / "grid")
    overrides, test_path, info = prepare_teacher(args, base, overrides)
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    grid = bench_grid.with_options(task_runner=task_runner(args.address, args.workers))
    result = grid(settings, base.as_dict(), overrides, test_path, info["dataset"])
    return {**result, "info": info}


def main(argv=None) -> None:
    from bench.report import write_report

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--address", default=None, help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--store", default=None, help="the one answer store every task shares (teacher.store)")
    parser.add_argument(
        "--store-budget", type=int, default=None, help="the store's teacher.budget (default: the sum of the cells' N)"
    )
    own, rest = parser.parse_known_args(argv)
    args = parse_args(rest)
    args.address, args.store, args.store_budget = own.address, own.store, own.store_budget
    result = run_grid(args)
    with open(args.out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(result["rows"])
    write_report(result["rows"], result["info"], args.out)
    new_calls = sum(cell["new_calls"] for cell in result["cells"])
    print(
        f"wrote {args.out / 'results.csv'}; teacher calls paid by this grid: {new_calls} "
        f"(store {args.store}: {max(c['store_calls'] for c in result['cells'])} counted, "
        f"budget {result['store_budget']})"
    )


if __name__ == "__main__":
    main()
