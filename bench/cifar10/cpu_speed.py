"""How long the `train` stage takes on this machine's CPU for the natural-image default recipe at N = 300 calls.

    nice -n 10 python bench/cifar10/cpu_speed.py --steps 100 --out bench/cifar10/cpu_speed.json

The training run is the GPU benchmark's row (bench/cifar10/gpu.py: cnn 32-64-128, flip + crop, 64 groups a step,
learning rates 0.003 and 0.001 searched, refit, the recipe's pool term) with `student.device: cpu` and fewer steps;
its time is linear in the steps (a fixed step cost), so the report gives the measured seconds and the same
run at the benchmark's 1,000 steps, extrapolated. The inputs are CIFAR-10 images (the unpacked smoke or full
set under .cache/) with random teacher logits: what is timed does not depend on the answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> None:
    from bench.recipes import DEFAULT_BY_MODALITY
    from bench.run import variant_overrides
    from ckd.comparative import comparative_set
    from ckd.config import load_config, with_overrides
    from ckd.data import Pool, load_source
    from ckd.runtime import available_cores
    from ckd.stages.train import train

    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--images", default=None, help="a CIFAR-10 train/ folder (default: .cache/cifar10[_smoke]/train)")
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--full-steps", type=int, default=1000, help="the benchmark's steps, for the extrapolation")
    p.add_argument("--recipe", default=DEFAULT_BY_MODALITY["image"])
    p.add_argument("--threads", default="auto", help="student.threads (auto: by the student's FLOPs)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    folder = args.images or next(
        str(ROOT / ".cache" / d / "train")
        for d in ("cifar10", "cifar10_smoke")
        if (ROOT / ".cache" / d / "train").is_dir()
    )
    overrides = {
        "data.source": folder,
        "student.arch": "cnn",
        "student.arch_args": {"channels": [32, 64, 128]},
        "student.steps": args.steps,
        "student.eval_every": max(1, args.steps // 10),
        "student.lr": [0.003, 0.001],
        "student.batch_size": 64,
        "student.device": "cpu",
        "student.threads": args.threads if args.threads == "auto" else int(args.threads),
        **variant_overrides(args.recipe, {}, None),
        "student.augment": "shift_flip",
    }
    params = with_overrides(load_config(ROOT / "params.yaml"), overrides)
    data = load_source(folder, params.data)
    pool = Pool(ids=np.arange(len(data.x)), x=data.x, class_names=data.class_names, is_image=True, labels=data.y)
    ids = np.sort(np.random.default_rng(0).choice(len(data.x), args.budget, replace=False))
    logits = np.random.default_rng(1).normal(size=(args.budget, len(data.class_names))).astype(np.float32) * 5
    built = comparative_set(
        ids,
        logits,
        pool,
        "logits",
        params.comparative.group_size,
        params.comparative.max_groups,
        0,
        params.comparative.negatives,
    )
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    _, _, metrics = train(params.student, built, progress=False)
    seconds = time.perf_counter() - start
    candidates = len(metrics["selection"])
    steps_run = candidates * args.steps + (args.steps if params.student.refit else 0)
    result = {
        "recipe": args.recipe,
        "budget": args.budget,
        "steps": args.steps,
        "candidates": candidates,
        "steps_run": steps_run,
        "seconds": round(seconds, 1),
        "threads": metrics["threads"],
        "cores": available_cores(),
        "seconds_per_step": seconds / steps_run,
        "extrapolated_seconds_at_full_steps": round(seconds * args.full_steps / args.steps, 1),
        "full_steps": args.full_steps,
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "images": folder,
        "overrides": overrides,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
