"""Screening of model-selection rules (issue 13): record every candidate's whole trajectory once, then
score each rule offline on the same runs.

    python -m bench.selection --dataset ../shared/data/mnist_t10k.npz --budgets 100 --teacher T.onnx

For each (budget N, data seed, student seed, learning rate) it trains the recipe twice as `train_student`
does: on the train part with evaluations on the validation part every `eval_every` steps, and refit on
all N for the full `steps`. At every evaluation it records validation accuracy, the cross-entropy to
the teacher's softmax (T=1), the KL to the teacher at T=4, and, for measurement only, the test accuracy
of that checkpoint; it also keeps the checkpoints to score weight averages of the last ones (SWA). A
refit stopped at step s is the same run as the full refit read at step s (same seed, same batches), so
a rule's "refit for s steps" is read off the refit curve. The test split is read only to score rules,
never by a rule. Writes curves.csv and rules.md under --out.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from bench import run as bench_run

CURVE_FIELDS = [
    "dataset",
    "budget",
    "seed",
    "student_seed",
    "lr",
    "phase",
    "step",
    "val_accuracy",
    "val_xent",
    "val_kl4",
    "test_accuracy",
]
SWA_WINDOWS = (5, 10)  # checkpoints averaged (at eval_every steps apart)


def _average(states: list[dict]) -> dict:
    return {k: sum(s[k] for s in states) / len(states) for k in states[0]}


def _trajectory(job: dict) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from ckd.augment import resolve_augment
    from ckd.comparative import ComparativeSet
    from ckd.config import validate_all
    from ckd.data import TestSet
    from ckd.methods import build_method
    from ckd.students import build_student
    from ckd.train import TrainingData, fit, seed_everything, split_rows
    from ckd.validate import accuracy, torch_logits

    torch.use_deterministic_algorithms(True)
    # the benchmark's job: the params `dvc repro` would run, with one learning rate and one student seed
    params = validate_all(job["params"])
    config = params.student.model_copy(update={"lr": (job["lr_value"],), "seed": job["student_seed"], "device": "cpu"})
    test = TestSet.load(job["test"])
    data = TrainingData.from_set(ComparativeSet.load(job["data"]), torch.device("cpu"))
    augment = resolve_augment(config.augment, data.sample_shape, data.is_image)
    train_rows, val_rows = split_rows(len(data.x), config.val_fraction, config.seed)
    val = torch.as_tensor(val_rows)
    args = {k: (v[0] if isinstance(v, (list, tuple)) else v) for k, v in config.method_args.items()}
    key = {
        "dataset": job["dataset"],
        "budget": job["budget"],
        "seed": job["seed"],
        "student_seed": job["student_seed"],
        "lr": job["lr_value"],
    }
    rows: list[dict] = []

    def scores(model) -> dict:
        model.eval()
        with torch.no_grad():
            logits = model(data.x[val])
            teacher = data.teacher[val]
            val_accuracy = (logits.argmax(-1) == data.targets(val)).float().mean().item()
            xent = -(torch.softmax(teacher, -1) * F.log_softmax(logits, -1)).sum(-1).mean().item()
            kl4 = F.kl_div(
                F.log_softmax(logits / 4, -1), F.log_softmax(teacher / 4, -1), log_target=True, reduction="batchmean"
            ).item()
        test_accuracy = accuracy(torch_logits(model, test.x), test.labels)
        model.train()
        return {"val_accuracy": val_accuracy, "val_xent": xent, "val_kl4": kl4, "test_accuracy": test_accuracy}

    for phase, fit_rows, fit_val in (("select", train_rows, val_rows), ("refit", np.arange(len(data.x)), None)):
        seed_everything(config.seed)
        method = build_method(
            config.method, data.num_classes, float(data.teacher.var()), data.labels is not None, **args
        )
        model = build_student(
            config.arch, data.sample_shape, data.num_classes, data.norm_mean, data.norm_std, dict(config.arch_args)
        )
        states: list[dict] = []

        def record(step, model, phase=phase, states=states):
            states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            rows.append({**key, "phase": phase, "step": step, **scores(model)})

        fit(
            data,
            method,
            model,
            fit_rows,
            fit_val,
            config.lr[0],
            config.steps,
            config,
            augment,
            config.seed,
            on_eval=record,
        )
        for window in SWA_WINDOWS:
            model.load_state_dict(_average(states[-window:]))
            rows.append({**key, "phase": f"{phase}_swa{window}", "step": config.steps, **scores(model)})
    return rows


def _mean_curve(points: list[dict], name: str, last_half: bool) -> float:
    chosen = points[len(points) // 2 :] if last_half else points
    return statistics.fmean(p[name] for p in chosen)


RULES = {
    "current: (val acc, -xent) over lr x step, refit best step": "current",
    "KL(T=4) to teacher over lr x step, refit best step": "kl_step",
    "current, refit floor steps/2": "floor_half",
    "current lr, refit full steps": "current_full",
    "lr by last-half mean val acc (tie: KL T=4), refit full": "lasthalf_acc_full",
    "lr by last-half mean KL(T=4), refit full": "lasthalf_kl_full",
    "lr by last-half mean KL(T=4), refit full, SWA last 10": "lasthalf_kl_swa10",
    "lr by last-half mean KL(T=4), refit full, SWA last 5": "lasthalf_kl_swa5",
    "lr by SWA10 val KL(T=4), refit full, SWA last 10": "swa_kl_swa10",
    "lr by last-half mean val acc (tie: KL T=4), refit full, SWA last 10": "lasthalf_acc_swa10",
    "lr by last-half mean val acc (tie: KL T=4), refit full, SWA last 5 (the plateau rule)": "lasthalf_acc_swa5",
    "no refit: current rule's checkpoint": "norefit_current",
    "fixed lr 3e-3, refit full (no selection)": "fixed_hi",
    "fixed lr 1e-3, refit full (no selection)": "fixed_lo",
}


def apply_rule(rule: str, by_lr: dict[float, dict[str, list[dict]]], steps: int) -> float:
    """Test accuracy the rule ends with, for one (budget, seed, student seed); by_lr[lr][phase] = points."""
    lrs = sorted(by_lr, reverse=True)  # the grid's order: 3e-3 before 1e-3 (ties keep the first)

    def refit_at(lr, step):
        return next(p["test_accuracy"] for p in by_lr[lr]["refit"] if p["step"] == step)

    def best_point(key):
        return max(((lr, p) for lr in lrs for p in by_lr[lr]["select"]), key=lambda lp: key(lp[1]))

    if rule in ("current", "floor_half", "current_full", "norefit_current"):
        lr, point = best_point(lambda p: (p["val_accuracy"], -p["val_xent"]))
        if rule == "norefit_current":
            return point["test_accuracy"]
        step = {"current": point["step"], "floor_half": max(point["step"], steps // 2)}.get(rule, steps)
        return refit_at(lr, step)
    if rule == "kl_step":
        lr, point = best_point(lambda p: -p["val_kl4"])
        return refit_at(lr, point["step"])
    if rule.startswith("fixed"):
        return refit_at(max(lrs) if rule == "fixed_hi" else min(lrs), steps)
    if rule.startswith("lasthalf_acc"):
        lr = max(
            lrs,
            key=lambda lr: (
                _mean_curve(by_lr[lr]["select"], "val_accuracy", True),
                -_mean_curve(by_lr[lr]["select"], "val_kl4", True),
            ),
        )
    elif rule.startswith("lasthalf_kl"):
        lr = min(lrs, key=lambda lr: _mean_curve(by_lr[lr]["select"], "val_kl4", True))
    elif rule == "swa_kl_swa10":
        lr = min(lrs, key=lambda lr: by_lr[lr]["select_swa10"][0]["val_kl4"])
    else:
        raise ValueError(rule)
    if rule.endswith("_full"):
        return refit_at(lr, steps)
    return by_lr[lr][f"refit_{rule.rsplit('_', 1)[1]}"][0]["test_accuracy"]


def rules_table(rows: list[dict], steps: int) -> str:
    runs: dict[tuple, dict] = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for row in rows:
        point = {k: float(row[k]) for k in ("step", "val_accuracy", "val_xent", "val_kl4", "test_accuracy")}
        runs[(row["dataset"], int(row["budget"]))][(int(row["seed"]), int(row["student_seed"]))][float(row["lr"])][
            row["phase"]
        ].append(point)
    out = []
    for (dataset, budget), by_run in sorted(runs.items()):
        lr_count = max(len(by_lr) for by_lr in by_run.values())
        by_run = {
            run: by_lr
            for run, by_lr in by_run.items()  # a run still in progress is left out
            if len(by_lr) == lr_count and all(len(phases) == 2 + 2 * len(SWA_WINDOWS) for phases in by_lr.values())
        }
        out += [
            f"### {dataset}, N={budget}: test accuracy (%) over {len(by_run)} runs (data seed x student seed)",
            "",
            "| rule | mean | std | worst | mean - worst | std over student seeds (mean of per-data-seed) |",
            "|---|---|---|---|---|---|",
        ]
        for label, rule in RULES.items():
            results = {run: 100 * apply_rule(rule, by_lr, steps) for run, by_lr in sorted(by_run.items())}
            values = list(results.values())
            mean, worst = statistics.fmean(values), min(values)
            per_seed = defaultdict(list)
            for (seed, _), value in results.items():
                per_seed[seed].append(value)
            within = statistics.fmean(statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_seed.values())
            out.append(
                f"| {label} | {mean:.1f} | {statistics.stdev(values) if len(values) > 1 else 0.0:.1f} | {worst:.1f} | "
                f"{mean - worst:.1f} | {within:.1f} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.selection", description=__doc__.strip().splitlines()[0])
    p.add_argument("--variant", default="ckd_pool")
    p.add_argument("--student-seeds", type=int, default=3)
    p.add_argument("--rules-only", action="store_true", help="re-score an existing curves.csv")
    own, rest = p.parse_known_args(argv)
    args = bench_run.parse_args(rest + ["--variants", own.variant, "--science-seeds", "0", "--regimes", "labelled"])
    base, overrides = bench_run.base_params(args)
    args.out.mkdir(parents=True, exist_ok=True)
    curves_path = args.out / "curves.csv"
    if not own.rules_only:
        jobs, _ = bench_run.prepare(args, base, overrides, args.out)
        work = [
            {**job, "student_seed": s, "lr_value": lr}
            for job in jobs
            for s in range(own.student_seeds)
            for lr in job["params"]["student"]["lr"]
        ]
        with (
            ProcessPoolExecutor(max_workers=args.workers, initializer=bench_run._init_worker) as pool,
            open(curves_path, "w", newline="") as handle,
        ):
            writer = csv.DictWriter(handle, fieldnames=CURVE_FIELDS)
            writer.writeheader()
            futures = [pool.submit(_trajectory, job) for job in work]
            for number, future in enumerate(as_completed(futures), 1):
                writer.writerows(future.result())
                handle.flush()
                print(f"{number}/{len(futures)} trajectories", flush=True)
    with open(curves_path) as handle:
        rows = list(csv.DictReader(handle))
    table = rules_table(rows, base.student.steps)
    (args.out / "rules.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
