"""CPU threads: how long the train stage takes alone and beside one CPU-bound process, and which
student sizes gain from more than one thread.

    python bench/threads.py [--steps 300] [--repeats 3] [--out bench/threads]
    python bench/threads.py --sizes [--hidden 64,256,1024,2048]

Stage mode runs `python -m ckd.stages.train` (a fresh process, as DVC runs it) on a synthetic MNIST-sized
comparative data set (N=300 queried 28x28 inputs, 2000 free pool inputs, so the augmentation and the
FixMatch term run) with `student.threads` = `auto` and = the cores (what torch does when nothing is
set), each alone and beside `python -c "while True: pass"`. The conditions are interleaved and
repeated so that a machine shared with other work loads them alike; the figures to read are the
ratios within one run (beside / alone), not the absolute seconds.

Sizes mode times full training steps (CKD pairs, 128 per step, Adam) of MLP students of growing
width in this process at 1 thread and at the cores: where the cores win marks the size from which
`auto` gives a student more than one thread (`ckd.runtime.SMALL_STUDENT_FLOPS`, forward FLOPs a sample).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ckd.runtime import available_cores


def synthetic_comparative(path: Path, queried: int = 300, pool: int = 2300, seed: int = 0) -> None:
    from ckd.comparative import comparative_set
    from ckd.data import Pool

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(pool, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, size=pool)
    scores = rng.normal(size=(queried, 10)).astype(np.float32) * 4
    scores[np.arange(queried), labels[:queried]] += 8
    pool_set = Pool(
        ids=np.arange(pool), x=x, class_names=tuple(str(c) for c in range(10)), is_image=True, labels=labels
    )
    comparative_set(np.arange(queried), scores, pool_set, "logits", 1, 20000, seed).save(path)


def run_train_stage(workdir: Path, threads, steps: int) -> dict:
    """One `python -m ckd.stages.train` process; returns its wall time and the stage's own train_seconds."""
    import yaml

    params = workdir / f"params_{threads}.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "student": {
                    "steps": steps,
                    "lr": [0.003],
                    "refit": False,
                    "eval_every": 100,
                    "threads": threads,
                    "device": "cpu",
                }
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    log_dir = workdir / f"train_{threads}"  # the stage's metrics: <log-dir>/metrics.json (DVCLive)
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ckd.stages.train",
            "--data",
            str(workdir / "comparative.npz"),
            "--out",
            str(workdir / "student.pt"),
            "--log-dir",
            str(log_dir),
            "--params",
            str(params),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"ckd.stages.train failed ({done.returncode}): {done.stderr[-2000:]}")
    wall = time.perf_counter() - start
    stage = json.loads((log_dir / "metrics.json").read_text())
    return {"wall_s": wall, "train_s": stage["train_seconds"], "threads_used": stage["threads"]}


def stage_mode(steps: int, repeats: int) -> dict:
    cores = available_cores()
    settings = {"auto": "auto", "cores": cores}
    rows: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        synthetic_comparative(workdir / "comparative.npz")
        for _ in range(repeats):
            for contention in ("alone", "beside_busy"):
                busy = None
                if contention == "beside_busy":
                    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                try:
                    for name, threads in settings.items():
                        rows.setdefault((name, contention), []).append(run_train_stage(workdir, threads, steps))
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
    table = []
    for name in settings:
        alone = statistics.median(r["train_s"] for r in rows[(name, "alone")])
        beside = statistics.median(r["train_s"] for r in rows[(name, "beside_busy")])
        table.append(
            {
                "threads": name,
                "threads_used": rows[(name, "alone")][0]["threads_used"],
                "train_s_alone": round(alone, 2),
                "train_s_beside_busy": round(beside, 2),
                "ratio": round(beside / alone, 2),
                "wall_s_alone": round(statistics.median(r["wall_s"] for r in rows[(name, "alone")]), 2),
                "wall_s_beside_busy": round(statistics.median(r["wall_s"] for r in rows[(name, "beside_busy")]), 2),
            }
        )
    return {"mode": "stage", "cores": cores, "steps": steps, "repeats": repeats, "rows": table}


def sizes_mode(widths: list[int], steps: int, repeats: int) -> dict:
    import torch

    from ckd.comparative import build_groups
    from ckd.methods import build_method
    from ckd.students import build_student

    cores = available_cores()
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.integers(0, 256, size=(1000, 28, 28)).astype(np.float32))
    teacher = torch.as_tensor(rng.normal(size=(1000, 10)).astype(np.float32) * 8)
    positives, negatives = (torch.as_tensor(a) for a in build_groups(1000, 1, 20000, seed=0))
    mean, std = np.full((28, 28), 127.0, np.float32), np.full((28, 28), 74.0, np.float32)
    method = build_method("ckd", 10, float(teacher.var()), labelled=False)
    table = []
    for width in widths:
        torch.manual_seed(0)
        model = build_student("mlp", (28, 28), 10, mean, std, {"hidden": [width]})
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)

        def step(model=model, optimizer=optimizer, generator=generator):
            groups = torch.randint(len(positives), (128,), generator=generator)
            rows = torch.cat([positives[groups], negatives[groups]], 1).reshape(-1)
            loss = method.loss(model(x.index_select(0, rows)), teacher.index_select(0, rows), None, 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        rates: dict[int, list[float]] = {1: [], cores: []}
        for _ in range(repeats):
            for threads in rates:  # interleaved: both see the same load
                torch.set_num_threads(threads)
                for _ in range(10):
                    step()
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                rates[threads].append(steps / (time.perf_counter() - start))
        one, many = max(rates[1]), max(rates[cores])
        table.append(
            {
                "hidden": width,
                "parameters": sum(p.numel() for p in model.parameters()),
                "steps_per_s_1_thread": round(one, 1),
                f"steps_per_s_{cores}_threads": round(many, 1),
                "cores_over_1": round(many / one, 2),
            }
        )
    return {"mode": "sizes", "cores": cores, "steps": steps, "repeats": repeats, "rows": table}


def markdown(report: dict) -> str:
    rows = report["rows"]
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python bench/threads.py", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--sizes", action="store_true", help="steps/s of MLP students by width, 1 thread vs the cores")
    parser.add_argument("--hidden", default="64,256,1024,2048,4096", help="MLP widths for --sizes")
    parser.add_argument("--steps", type=int, default=None, help="training steps (stage: 300; sizes: 200)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    if args.sizes:
        report = sizes_mode([int(w) for w in args.hidden.split(",")], args.steps or 200, args.repeats)
    else:
        report = stage_mode(args.steps or 300, args.repeats)
    report["load_average_before"], report["load_average_after"] = load_before, os.getloadavg()  # 1, 5, 15 min
    print(json.dumps(report, indent=2))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        out.with_suffix(".md").write_text(
            markdown(report) + f"\nLoad average (1, 5, 15 min) before {report['load_average_before']}, "
            f"after {report['load_average_after']}.\n"
        )


if __name__ == "__main__":
    main()
