"""Methods x budgets x seeds x regimes on one data set, at equal teacher budget, through the pipeline's own stages.

    python -m bench --dataset digits
    python -m bench --dataset ../shared/data/mnist_t10k.npz --test-size 2000 --teacher-epochs 8

Not a second pipeline: every row is `params.yaml` (or `--params`) with overrides on top, run through the
very `ckd.stages` functions `dvc repro` runs (teacher, sample, query, check, build, train), so a row and
`dvc repro` with the row's `overrides` (written in results.csv) give the same student. The benchmark's
own overrides: the split is fixed (`data.split_seed`, default the base's) so one stand-in teacher and one
test split serve every row; each (budget N, seed) sets `teacher.budget=N`, `seed` and `student.seed`, and
gets its own ledger (`teacher.store`); a variant (`bench.recipes`) sets the student's method,
arguments and augmentation; the regime sets `data.use_labels` (`teacher_only`: no pool label is read).
Test accuracy is measured on the held-out split, as `validate` does. Writes results.csv, results.md
and accuracy_vs_calls.png under --out.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from bench.recipes import POOL_OFF, RECIPES
from bench.report import write_report
from ckd.config import Params, load_config, validate_all, with_overrides
from ckd.errors import CkdError
from ckd.teachers.base import TeacherSettings

PROJECT_DIR = Path(__file__).resolve().parents[1]  # the repository whose dvc.yaml orders the stages
FIELDS = [
    "dataset",
    "regime",
    "budget",
    "seed",
    "student_seed",
    "variant",
    "method",
    "test_accuracy",
    "val_accuracy",
    "teacher_calls",
    "chosen",
    "train_seconds",
    "overrides",
]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _train_one(job: dict) -> dict:
    """The `train` stage on a prepared comparative set, then test accuracy as `validate` measures it."""
    from ckd.comparative import ComparativeSet
    from ckd.data import TestSet
    from ckd.stages.train import train
    from ckd.validate import accuracy, torch_logits

    params = validate_all(job["params"])
    test = TestSet.load(job["test"])
    start = time.perf_counter()
    checkpoint, _, metrics = train(params.student, ComparativeSet.load(job["data"]), progress=False)
    seconds = time.perf_counter() - start
    return {
        "dataset": job["dataset"],
        "regime": job["regime"],
        "budget": job["budget"],
        "seed": job["seed"],
        "student_seed": params.student.seed,
        "variant": job["variant"],
        "method": params.student.method,
        "test_accuracy": accuracy(torch_logits(checkpoint.model(), test.x), test.labels),
        "val_accuracy": metrics["val_accuracy"],
        "teacher_calls": job["teacher_calls"],
        "chosen": json.dumps({**checkpoint.chosen, "step": metrics["best_step"]}),
        "train_seconds": round(seconds, 2),
        "overrides": json.dumps(job["overrides"]),
    }


def common_overrides(args) -> dict[str, Any]:
    """The benchmark's command-line options as params overrides (an option not given keeps the base's value)."""
    options = {
        "data.source": args.dataset,
        "data.test_size": args.test_size,
        "data.selection": args.selection,
        "data.split_seed": args.split_seed,
        "teacher.standin.epochs": args.teacher_epochs,
        "comparative.group_size": args.group_size,
        "comparative.max_groups": args.max_groups,
        "student.steps": args.steps,
        "student.lr": args.lr,
        "student.batch_size": args.batch_size,
        "student.arch": args.arch,
        "student.arch_args": json.loads(args.arch_args) if args.arch_args is not None else None,
    }
    overrides = {key: value for key, value in options.items() if value is not None}
    overrides["student.device"] = "cpu"  # one CPU thread per worker process:
    overrides["student.threads"] = 1  # the train stage sets its threads from this (`auto` may take every core)
    for item in args.set:
        key, _, raw = item.partition("=")
        overrides[key] = yaml.safe_load(raw)
    return overrides


def job_overrides(base: Params, budget: int, seed: int, regime: str, store: Path) -> dict[str, Any]:
    return {
        "data.split_seed": base.split_seed,
        "teacher.budget": budget,
        "seed": seed,
        "student.seed": seed,
        "data.use_labels": regime == "labelled",
        "teacher.store": str(store),
    }


def variant_overrides(variant: str, extra_args: dict[str, dict], augment: str | None) -> dict[str, Any]:
    recipe = RECIPES[variant]
    return {
        "student.method": recipe.method,
        "student.method_args": {**recipe.method_args, **extra_args.get(recipe.method, {})},
        "student.augment": augment or recipe.augment,
        **{f"student.{key}": value for key, value in {**POOL_OFF, **recipe.student}.items()},
        **{f"comparative.{key}": value for key, value in recipe.comparative.items()},
    }


def _call(stage: str, run: Callable[[], Any]) -> Any:
    return run()


def ask_teacher(
    params: Params, paying: TeacherSettings | None = None, timed: Callable = _call, embedded: str | None = None
) -> dict[str, Any]:
    """The pipeline's data stages (sample, query, check, build) in the order dvc.yaml runs them, on the very
    stage functions (the benchmark's one chain; `grid`, `bench.text` and `bench/scaling.py` run it too).
    `paying`: the teacher section that pays (default `params.teacher`; the grid's shared store has a budget of
    its own). `timed(stage, run)` runs each stage (a study times them). `embedded`: the embed stage's output (a
    text source). Returns the stages' outputs by name."""
    from ckd.stages import stage_names
    from ckd.stages.build import build
    from ckd.stages.check import check
    from ckd.stages.query import query
    from ckd.stages.sample import sample

    teacher = paying or params.teacher
    out: dict[str, Any] = {}

    def sample_step() -> None:
        out["pool"], out["test"], out["selection"], _ = sample(
            params.data, params.teacher.budget, params.split_seed, params.seed, embedded
        )

    def query_step() -> None:
        out["queried"], out["accounting"] = query(teacher, out["pool"], out["selection"], progress=False)

    def build_step() -> None:
        out["comparative"], _ = build(
            params.comparative, params.teacher.scores, params.seed, out["queried"], out["pool"]
        )

    steps = {
        "sample": sample_step,
        "query": query_step,
        "check": lambda: check(teacher, out["queried"], out["pool"]),
        "build": build_step,
    }
    for stage in stage_names(PROJECT_DIR):
        if stage in steps:
            timed(stage, steps[stage])
    return out


def prepare(args, base: Params, overrides: dict[str, Any], out: Path) -> tuple[list[dict], dict]:
    """Teacher, splits and the teacher's answers for every (budget, seed, regime); returns the training jobs."""
    from ckd.stages.build import build
    from ckd.stages.standin import standin
    from ckd.teachers.onnx_file import OnnxFileTeacher
    from ckd.validate import accuracy

    name = "digits" if base.data.source == "digits" else Path(base.data.source).stem
    data_dir = out / "data"
    teacher_path = Path(args.teacher) if args.teacher else out / "teacher.onnx"
    if not teacher_path.exists():
        trained, _ = standin(base.data, base.teacher.standin, base.split_seed, progress=False)
        trained.save(teacher_path)
    overrides = {**overrides, "teacher.model": str(teacher_path)}
    jobs, test_path, teacher_test_accuracy, pool_size, test_size = [], data_dir / "test.npz", None, None, None
    for budget in args.budgets:
        for seed in range(max(args.seeds, args.science_seeds)):
            variants = args.variants if seed < args.seeds else args.science_variants
            for regime in args.regimes:
                # absolute: a relative store path is the main repository's (ckd.store.sqlite), not this checkout's
                store = (out / "teacher_outputs" / f"n{budget}-s{seed}").resolve()  # each (N, seed) its own budget
                per_job = {**overrides, **job_overrides(base, budget, seed, regime, store)}
                params = with_overrides(base, per_job)
                stages = ask_teacher(params)
                pool, test, queried = (stages[k] for k in ("pool", "test", "queried"))
                data_paths = {}  # one comparative set per group shape the variants ask for (ckd_21: 2+1)
                for shape in dict.fromkeys(json.dumps(RECIPES[v].comparative, sort_keys=True) for v in variants):
                    comparative = stages["comparative"]  # params.comparative's shape, built by ask_teacher
                    if json.loads(shape):
                        shaped = with_overrides(params, {f"comparative.{k}": v for k, v in json.loads(shape).items()})
                        comparative, _ = build(shaped.comparative, params.teacher.scores, params.seed, queried, pool)
                    suffix = "".join(f"-{k}{v}" for k, v in json.loads(shape).items())
                    data_paths[shape] = data_dir / f"n{budget}-s{seed}-{regime}{suffix}.npz"
                    comparative.save(data_paths[shape])
                if teacher_test_accuracy is None:
                    test.save(test_path)
                    teacher_test_accuracy = accuracy(OnnxFileTeacher(str(teacher_path)).predict(test.x), test.labels)
                    pool_size, test_size = len(pool.ids), len(test.ids)
                # the student seed (init, batch order, train/validation split) apart from the data seed (which
                # N inputs the teacher is asked about); with one student seed per data seed it equals the data seed
                student_seeds = [seed * args.student_seeds + k for k in range(args.student_seeds)]
                for variant, student_seed in itertools.product(variants, student_seeds):
                    row_overrides = {
                        **per_job,
                        "student.seed": student_seed,
                        **variant_overrides(variant, json.loads(args.method_args), args.augment),
                    }
                    jobs.append(
                        {
                            "dataset": name,
                            "regime": regime,
                            "budget": budget,
                            "seed": seed,
                            "variant": variant,
                            "test": str(test_path),
                            "data": str(data_paths[json.dumps(RECIPES[variant].comparative, sort_keys=True)]),
                            "teacher_calls": stages["accounting"]["calls_spent_total"],
                            "overrides": row_overrides,
                            "params": with_overrides(base, row_overrides).as_dict(),
                        }
                    )
    student = base.student if not jobs else validate_all(jobs[0]["params"]).student
    info = {
        "dataset": name,
        "pool": pool_size,
        "test": test_size,
        "teacher_test_accuracy": teacher_test_accuracy,
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
    return jobs, info


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.strip().splitlines()[0])
    p.add_argument("--params", default="params.yaml", help="the base parameters (default: params.yaml)")
    p.add_argument("--dataset", default=None, help="data.source: 'digits' or an .npz (default: the base's)")
    p.add_argument("--test-size", type=float, default=None, help="data.test_size (default: the base's)")
    p.add_argument(
        "--budgets",
        type=lambda s: [int(v) for v in s.split(",")],
        default=None,
        help="teacher.budget values (default 20,60,180 on digits, else 100,300,900)",
    )
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--student-seeds",
        type=int,
        default=1,
        help="student seeds per data seed (runs = data seeds x student seeds; the report gives both spreads)",
    )
    p.add_argument("--science-seeds", type=int, default=6, help="seeds for each comparative variant and its control")
    p.add_argument(
        "--variants",
        type=lambda s: s.split(","),
        default=[
            name for name, recipe in RECIPES.items() if name not in ("ckd_pool", "kd_pool") and not recipe.comparative
        ],
    )
    p.add_argument("--science-variants", type=lambda s: s.split(","), default=["ckd", "ckd_control"])
    p.add_argument("--regimes", type=lambda s: s.split(","), default=["labelled", "teacher_only"])
    p.add_argument("--steps", type=int, default=None, help="student.steps")
    p.add_argument("--lr", type=lambda s: [float(v) for v in s.split(",")], default=None, help="student.lr")
    p.add_argument("--batch-size", type=int, default=None, help="student.batch_size")
    p.add_argument("--arch", default=None, help="student.arch")
    p.add_argument("--arch-args", default=None, help="student.arch_args as JSON")
    p.add_argument(
        "--method-args",
        default="{}",
        help='JSON of extra method arguments by method, e.g. {"ckd": {"w_rel": 4}} (controls share them)',
    )
    p.add_argument("--augment", default=None, help="student.augment for every variant (default: per recipe)")
    p.add_argument("--selection", default=None, help="data.selection")
    p.add_argument("--group-size", type=int, default=None, help="comparative.group_size")
    p.add_argument("--max-groups", type=int, default=None, help="comparative.max_groups")
    p.add_argument("--teacher-epochs", type=int, default=None, help="teacher.standin.epochs")
    p.add_argument("--teacher", default=None, help="reuse a stand-in teacher trained on the same split (.onnx)")
    p.add_argument("--split-seed", type=int, default=None, help="data.split_seed (default: the base's split)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other params override")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="1: train in this process")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    unknown = [v for v in args.variants + args.science_variants if v not in RECIPES]
    if unknown:
        p.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    return args


def base_params(args) -> tuple[Params, dict[str, Any]]:
    """params.yaml with the command line's overrides, validated (a bad option fails here, before any call);
    fills in `args.budgets` and `args.out` from the data source."""
    try:
        overrides = common_overrides(args)
        base = with_overrides(load_config(args.params), overrides)
        if args.augment is not None:
            with_overrides(base, {"student.augment": args.augment})
    except CkdError as error:
        raise SystemExit(f"ckd bench: error: {error}") from None
    name = "digits" if base.data.source == "digits" else Path(base.data.source).stem
    args.budgets = args.budgets or ([20, 60, 180] if base.data.source == "digits" else [100, 300, 900])
    args.out = Path(args.out or f"bench_results/{name}")
    return base, overrides


def main(argv=None) -> None:
    args = parse_args(argv)
    base, overrides = base_params(args)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs, info = prepare(args, base, overrides, args.out)
    results_path = args.out / "results.csv"
    done = []
    with open(results_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        if args.workers == 1:
            _init_worker()
            rows = (_train_one(job) for job in jobs)
            for row in tqdm(rows, total=len(jobs), desc="bench runs", unit="run"):
                writer.writerow(row)
                handle.flush()
                done.append(row)
        else:
            with ProcessPoolExecutor(max_workers=args.workers, initializer=_init_worker) as pool:
                futures = [pool.submit(_train_one, job) for job in jobs]
                for future in tqdm(as_completed(futures), total=len(futures), desc="bench runs", unit="run"):
                    row = future.result()
                    writer.writerow(row)
                    handle.flush()
                    done.append(row)
    (args.out / "info.json").write_text(
        json.dumps({**info, "command": vars(args) | {"out": str(args.out)}}, indent=2, default=str)
    )
    write_report(done, info, args.out)
    print(f"wrote {results_path}, {args.out / 'results.md'}, {args.out / 'accuracy_vs_calls.png'}")


if __name__ == "__main__":
    main()
