"""Methods x budgets x seeds x regimes on one data set, at equal teacher budget.

    python -m ckd.bench --dataset digits
    python -m ckd.bench --dataset ../shared/data/mnist_t10k.npz --test-size 2000

For each (budget N, seed): the seed selects N pool inputs, the stand-in teacher (trained on the whole
labelled pool, as in the pipeline) is asked once about them under its own ledger, and every variant
trains on those N answers, in two regimes: `labelled` (the N samples' labels may be used) and
`teacher_only` (no pool label is ever read). Test accuracy is measured on the held-out split, which no
selection step reads. Writes results.csv, results.md and accuracy_vs_calls.png under --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ckd.bench.recipes import RECIPES
from ckd.bench.report import write_report
from ckd.comparative import comparative_arrays
from ckd.config import StandinConfig, StudentConfig
from ckd.data import load_source, select_for_teacher, split_pool_test
from ckd.export import export_onnx
from ckd.query import run_query
from ckd.teachers.onnx_file import OnnxFileTeacher
from ckd.teachers.standin import train_standin

FIELDS = ["dataset", "regime", "budget", "seed", "variant", "method", "test_accuracy", "val_accuracy",
          "teacher_calls", "chosen", "train_seconds"]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _train_one(job: dict) -> dict:
    import torch

    from ckd.train import train_student
    from ckd.validate import accuracy, torch_logits

    recipe = RECIPES[job["variant"]]
    config = StudentConfig(arch=job["arch"], arch_args=job["arch_args"], method=recipe.method,
                           method_args={**recipe.method_args, **job["extra_args"].get(recipe.method, {})},
                           lr=tuple(job["lr"]), steps=job["steps"], batch_size=job["batch_size"],
                           augment=job["augment"] or recipe.augment, seed=job["seed"], device="cpu",
                           **recipe.student)
    arrays = dict(np.load(job["arrays"], allow_pickle=False))
    if job["regime"] == "teacher_only":
        arrays.pop("labels", None)
    test = np.load(job["test"], allow_pickle=False)
    start = time.perf_counter()
    outcome = train_student(arrays, config, torch.device("cpu"), progress=False)
    seconds = time.perf_counter() - start
    return {"dataset": job["dataset"], "regime": job["regime"], "budget": job["budget"], "seed": job["seed"],
            "variant": job["variant"], "method": recipe.method,
            "test_accuracy": accuracy(torch_logits(outcome.model, test["x"]), test["labels"]),
            "val_accuracy": outcome.val_accuracy, "teacher_calls": job["teacher_calls"],
            "chosen": json.dumps({"lr": outcome.chosen.lr, **outcome.chosen.method_args, "step": outcome.best_step}),
            "train_seconds": round(seconds, 2)}


def prepare(args, out: Path) -> tuple[list[dict], dict]:
    """Teacher, splits and the teacher's answers for every (budget, seed); returns the training jobs."""
    dataset = load_source(args.dataset)
    name = Path(args.dataset).stem if args.dataset != "digits" else "digits"
    pool_ids, test_ids = split_pool_test(len(dataset.x), args.test_size, args.split_seed)
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez(data_dir / "test.npz", x=dataset.x[test_ids], labels=dataset.y[test_ids])
    teacher_path = Path(args.teacher) if args.teacher else out / "teacher.onnx"
    if not teacher_path.exists():
        model, input_shape = train_standin(dataset.x[pool_ids], dataset.y[pool_ids], dataset.num_classes,
                                           dataset.is_image, StandinConfig(epochs=args.teacher_epochs),
                                           args.split_seed)
        export_onnx(model, input_shape, teacher_path, opset=17)
    teacher = OnnxFileTeacher(str(teacher_path))
    teacher_test_accuracy = float((teacher.predict(dataset.x[test_ids]).argmax(1) == dataset.y[test_ids]).mean())
    pool = {"ids": pool_ids, "x": dataset.x[pool_ids], "labels": dataset.y[pool_ids],
            "class_names": np.asarray(dataset.class_names), "is_image": np.asarray(dataset.is_image)}
    jobs = []
    for budget in args.budgets:
        for seed in range(max(args.seeds, args.science_seeds)):
            chosen = select_for_teacher(pool_ids, pool["x"], budget, args.selection, seed)
            rows = np.searchsorted(pool_ids, chosen)
            result = run_query(teacher, chosen, pool["x"][rows], dataset.num_classes, budget,
                               out / "teacher_outputs" / f"n{budget}-s{seed}", progress=False)
            assert result.calls_spent_total <= budget and len(result.ids) == budget
            arrays = comparative_arrays(result.ids, result.scores, pool, "logits", args.group_size,
                                        args.max_groups, seed)
            arrays_path = data_dir / f"n{budget}-s{seed}.npz"
            np.savez(arrays_path, **arrays)
            variants = args.variants if seed < args.seeds else args.science_variants
            for regime in args.regimes:
                for variant in variants:
                    jobs.append({"dataset": name, "regime": regime, "budget": budget, "seed": seed,
                                 "variant": variant, "arrays": str(arrays_path), "test": str(data_dir / "test.npz"),
                                 "teacher_calls": result.calls_spent_total, "arch": args.arch,
                                 "arch_args": json.loads(args.arch_args), "lr": args.lr, "steps": args.steps,
                                 "batch_size": args.batch_size, "extra_args": json.loads(args.method_args),
                                 "augment": args.augment})
    info = {"dataset": name, "pool": int(len(pool_ids)), "test": int(len(test_ids)),
            "teacher_test_accuracy": teacher_test_accuracy, "steps": args.steps, "lr_grid": args.lr,
            "student": f"{args.arch} {args.arch_args}", "group_size": args.group_size,
            "method_args": args.method_args, "augment": args.augment or "per recipe", "max_groups": args.max_groups,
            "selection": args.selection}
    return jobs, info


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ckd.bench", description=__doc__.strip().splitlines()[0])
    p.add_argument("--dataset", default="digits", help="'digits' or an .npz (e.g. ../shared/data/mnist_t10k.npz)")
    p.add_argument("--test-size", type=float, default=None, help="held-out samples (default 500 digits, 2000 else)")
    p.add_argument("--budgets", type=lambda s: [int(v) for v in s.split(",")], default=None)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--science-seeds", type=int, default=6, help="seeds for each comparative variant and its control")
    p.add_argument("--variants", type=lambda s: s.split(","),
                   default=[name for name in RECIPES if name not in ("ckd_pool", "kd_pool")])
    p.add_argument("--science-variants", type=lambda s: s.split(","), default=["ckd", "ckd_control"])
    p.add_argument("--regimes", type=lambda s: s.split(","), default=["labelled", "teacher_only"])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=lambda s: [float(v) for v in s.split(",")], default=[3e-3, 1e-3])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--arch", default="mlp")
    p.add_argument("--arch-args", default='{"hidden": [64]}')
    p.add_argument("--method-args", default="{}",
                   help='JSON of extra method arguments by method, e.g. {"ckd": {"w_rel": 4}} (controls share them)')
    p.add_argument("--augment", default=None, help="override every variant's augmentation (none, shift, ...)")
    p.add_argument("--selection", default="random", help="which pool inputs to send: random | kcenter")
    p.add_argument("--group-size", type=int, default=1)
    p.add_argument("--max-groups", type=int, default=20000)
    p.add_argument("--teacher-epochs", type=int, default=None)
    p.add_argument("--teacher", default=None, help="reuse a stand-in teacher trained on the same split (.onnx)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    digits = args.dataset == "digits"
    args.test_size = args.test_size or (500 if digits else 2000)
    args.budgets = args.budgets or ([20, 60, 180] if digits else [100, 300, 900])
    args.teacher_epochs = args.teacher_epochs or (40 if digits else 8)
    unknown = [v for v in args.variants + args.science_variants if v not in RECIPES]
    if unknown:
        p.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    name = "digits" if digits else Path(args.dataset).stem
    args.out = Path(args.out or f"bench_results/{name}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs, info = prepare(args, args.out)
    results_path = args.out / "results.csv"
    done = []
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_init_worker) as pool, \
            open(results_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        futures = [pool.submit(_train_one, job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc="bench runs", unit="run"):
            row = future.result()
            writer.writerow(row)
            handle.flush()
            done.append(row)
    (args.out / "info.json").write_text(json.dumps({**info, "command": vars(args) | {"out": str(args.out)}},
                                                   indent=2, default=str))
    write_report(done, info, args.out)
    print(f"wrote {results_path}, {args.out / 'results.md'}, {args.out / 'accuracy_vs_calls.png'}")


if __name__ == "__main__":
    main()
