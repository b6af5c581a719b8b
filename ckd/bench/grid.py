"""The benchmark grid as Prefect tasks on a Dask cluster: one machine's cores, or many machines'.

    python -m ckd.bench.grid --dataset digits --workers 2                 # a local Dask cluster (processes)
    python -m ckd.bench.grid --dataset digits --address tcp://HOST:8786   # an existing Dask scheduler

It takes `python -m ckd.bench`'s options (budgets, seeds, variants, ...). Each (budget N, seed) cell
asks the teacher in its own `ask` task, and each (cell, regime, variant) trains in its own `train`
task; Dask places them on its workers. Every `ask` task uses ONE answer store (`--store`, default
`teacher_outputs`, the pipeline's `teacher.store`): answers are keyed by the teacher's identity and
each input's hash, so an input selected by several cells, by a re-run or by another grid pointed at
the same store is paid for once. The store's ledger allows one writer at a time; an `ask` task that
finds it busy waits for it (nothing is sent meanwhile). `--store-budget` caps the store's teacher
calls over its life (default: the sum of the cells' N, which covers every cell even without overlap).

Workers must see the store and `--out` at the same paths (one machine, or a shared file system).

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
import json
import time
from pathlib import Path

from types import SimpleNamespace

import numpy as np
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ckd.errors import CkdError

LEDGER_BUSY = "another process is querying this teacher now"


def _cells(args) -> list[tuple[int, int]]:
    return [(budget, seed) for budget in args.budgets for seed in range(max(args.seeds, args.science_seeds))]


# DVC and the answer store own caching; Prefect caches nothing (STYLE.md: one owner of caching).
@task(name="ask", task_run_name="ask-n{budget}-s{seed}", cache_policy=NO_CACHE)
def ask(settings: dict, teacher_path: str, budget: int, seed: int, store_budget: int,
        wait_s: float = 600.0) -> dict:
    """Select the cell's N inputs and get the teacher's answers from the shared store, paying only for
    inputs it has never answered; write the cell's comparative data set."""
    from ckd.comparative import comparative_arrays
    from ckd.data import load_source, select_for_teacher, split_pool_test
    from ckd.query import run_query
    from ckd.teachers.onnx_file import OnnxFileTeacher

    args = SimpleNamespace(**settings)
    dataset = load_source(args.dataset)
    pool_ids, _ = split_pool_test(len(dataset.x), args.test_size, args.split_seed)
    pool = {"ids": pool_ids, "x": dataset.x[pool_ids], "labels": dataset.y[pool_ids],
            "class_names": np.asarray(dataset.class_names), "is_image": np.asarray(dataset.is_image)}
    chosen = select_for_teacher(pool_ids, pool["x"], budget, args.selection, seed)
    rows = np.searchsorted(pool_ids, chosen)
    teacher = OnnxFileTeacher(teacher_path)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            result = run_query(teacher, chosen, pool["x"][rows], dataset.num_classes, store_budget, args.store,
                               progress=False)
            break
        except CkdError as error:
            # The ledger's lock is held by another cell's task: nothing was sent, so waiting is safe.
            if LEDGER_BUSY not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    if len(result.ids) != budget:
        raise CkdError(f"--store-budget={store_budget}: only {len(result.ids)} of the cell's {budget} inputs have "
                       f"an answer ({result.teacher_calls} calls counted in {result.store})")
    arrays = comparative_arrays(result.ids, result.scores, pool, "logits", args.group_size, args.max_groups, seed)
    path = Path(args.out) / "data" / f"n{budget}-s{seed}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return {"budget": budget, "seed": seed, "arrays": str(path), "new_calls": result.new_calls,
            "store_calls": result.teacher_calls, "cell_calls": budget}


@task(name="train", cache_policy=NO_CACHE)
def train(job: dict) -> dict:
    import torch

    from ckd.bench.run import _train_one

    torch.set_num_threads(1)  # one task per worker process and core
    return _train_one(job)


def grid_jobs(args, cells: list[dict], test_path: str) -> list[dict]:
    jobs = []
    name = Path(args.dataset).stem if args.dataset != "digits" else "digits"
    for cell in cells:
        variants = args.variants if cell["seed"] < args.seeds else args.science_variants
        for regime in args.regimes:
            for variant in variants:
                jobs.append({"dataset": name, "regime": regime, "budget": cell["budget"], "seed": cell["seed"],
                             "variant": variant, "arrays": cell["arrays"], "test": test_path,
                             "teacher_calls": cell["cell_calls"], "arch": args.arch,
                             "arch_args": json.loads(args.arch_args), "lr": args.lr, "steps": args.steps,
                             "batch_size": args.batch_size, "extra_args": json.loads(args.method_args),
                             "augment": args.augment})
    return jobs


@flow(name="ckd-bench-grid")
def bench_grid(settings: dict, teacher_path: str, test_path: str) -> dict:
    """Ask for every cell, then train every (cell, regime, variant); only sequences the tasks."""
    args = SimpleNamespace(**settings)
    store_budget = args.store_budget or sum(budget for budget, _ in _cells(args))
    asked = [ask.submit(settings, teacher_path, budget, seed, store_budget) for budget, seed in _cells(args)]
    cells = [future.result() for future in asked]
    rows = [future.result() for future in train.map(grid_jobs(args, cells, test_path))]
    return {"cells": cells, "rows": rows, "store_budget": store_budget}


def prepare_teacher(args) -> tuple[str, str, dict]:
    """The test split and the teacher (given, or the stand-in trained on the pool) before the grid runs."""
    from ckd.data import load_source, split_pool_test
    from ckd.teachers.onnx_file import OnnxFileTeacher

    dataset = load_source(args.dataset)
    pool_ids, test_ids = split_pool_test(len(dataset.x), args.test_size, args.split_seed)
    out = Path(args.out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    test_path = out / "data" / "test.npz"
    np.savez(test_path, x=dataset.x[test_ids], labels=dataset.y[test_ids])
    teacher_path = Path(args.teacher) if args.teacher else out / "teacher.onnx"
    if not teacher_path.exists():
        from ckd.config import StandinConfig
        from ckd.export import export_onnx
        from ckd.teachers.standin import train_standin

        model, input_shape = train_standin(dataset.x[pool_ids], dataset.y[pool_ids], dataset.num_classes,
                                           dataset.is_image, StandinConfig(epochs=args.teacher_epochs),
                                           args.split_seed)
        export_onnx(model, input_shape, teacher_path, opset=17)
    teacher = OnnxFileTeacher(str(teacher_path))
    info = {"dataset": Path(args.dataset).stem if args.dataset != "digits" else "digits", "pool": int(len(pool_ids)),
            "test": int(len(test_ids)),
            "teacher_test_accuracy": float((teacher.predict(dataset.x[test_ids]).argmax(1)
                                            == dataset.y[test_ids]).mean()),
            "steps": args.steps, "lr_grid": args.lr, "student": f"{args.arch} {args.arch_args}",
            "group_size": args.group_size, "method_args": args.method_args, "augment": args.augment or "per recipe",
            "max_groups": args.max_groups, "selection": args.selection}
    return str(teacher_path), str(test_path), info


def task_runner(address: str | None, workers: int):
    """A DaskTaskRunner on an existing scheduler (`address`), else on a local cluster of worker processes."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "host": "127.0.0.1", "dashboard_address": None})


def run_grid(args) -> dict:
    teacher_path, test_path, info = prepare_teacher(args)
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    result = bench_grid.with_options(task_runner=task_runner(args.address, args.workers))(settings, teacher_path,
                                                                                        test_path)
    return {**result, "info": info}


def main(argv=None) -> None:
    from ckd.bench.report import write_report
    from ckd.bench.run import FIELDS, parse_args

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--address", default=None, help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--store", default="teacher_outputs", help="the one answer store every task shares")
    parser.add_argument("--store-budget", type=int, default=None,
                        help="cap on the store's teacher calls (default: the sum of the cells' N)")
    own, rest = parser.parse_known_args(argv)
    args = parse_args(rest)
    args.address, args.store, args.store_budget = own.address, own.store, own.store_budget
    args.out.mkdir(parents=True, exist_ok=True)
    result = run_grid(args)
    with open(args.out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(result["rows"])
    write_report(result["rows"], result["info"], args.out)
    new_calls = sum(cell["new_calls"] for cell in result["cells"])
    print(f"wrote {args.out / 'results.csv'}; teacher calls paid by this grid: {new_calls} "
          f"(store {args.store}: {max(c['store_calls'] for c in result['cells'])} counted, cap {result['store_budget']})")


if __name__ == "__main__":
    main()
