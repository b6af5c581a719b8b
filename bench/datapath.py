"""Training steps per second of the comparative data path (a) against a naive per-sample Dataset +
DataLoader (b) and the student's forward + backward alone on pre-made batches (c).

    python bench/datapath.py [--batch-size 128] [--device auto] [--threads 2] [--precision bf16]
                                 [--out bench/datapath_cuda.json]

With `--device auto` it measures on CUDA where a GPU is present (the same three paths and the same
ratios as on the CPU, timed after `torch.cuda.synchronize()`).

Each step is a full CKD step (pairs, `ckd` loss, Adam) of the default student (MLP 784-64-10) on
N=1000 queried MNIST-sized samples; (a) gathers each batch by index from tensors on the device,
(b) builds each group in a `Dataset.__getitem__` by indexing samples one at a time, as the paper's
public code does, (c) cycles through batches gathered beforehand.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ckd.comparative import ComparativeSet, build_groups
from ckd.methods import build_method
from ckd.runtime import torch_device
from ckd.students import build_student
from ckd.train import BatchSampler, TrainingData


class NaivePairDataset(torch.utils.data.Dataset):
    """One group per item, each member fetched and stacked one at a time."""

    def __init__(self, x: np.ndarray, teacher: np.ndarray, positives: np.ndarray, negatives: np.ndarray):
        self.x, self.teacher, self.positives, self.negatives = x, teacher, positives, negatives

    def __len__(self) -> int:
        return len(self.positives)

    def __getitem__(self, index: int):
        members = [*self.positives[index], *self.negatives[index]]
        xs = torch.stack([torch.as_tensor(self.x[m]) for m in members])
        ts = torch.stack([torch.as_tensor(self.teacher[m]) for m in members])
        return xs, ts


def synthetic_inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 28, 28)).astype(np.float32)
    return x, rng.normal(size=(n, 10)).astype(np.float32) * 8


def measure(step_fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step_fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step_fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python bench/datapath.py", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128, help="groups (pairs) per step")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast, as student.precision"
    )
    parser.add_argument("--out", default=None, help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device(args.device)
    x, teacher = synthetic_inputs(args.samples)
    positives, negatives = build_groups(args.samples, 1, 20000, seed=0)
    mean, std = x.reshape(len(x), -1).mean(0).reshape(28, 28), np.full((28, 28), x.std(), np.float32)
    comparative = ComparativeSet(
        ids=np.arange(args.samples),
        x=x,
        teacher=teacher,
        positives=positives,
        negatives=negatives,
        class_names=tuple(str(c) for c in range(10)),
        is_image=True,
        norm_mean=mean,
        norm_std=std,
    )
    data = TrainingData.from_set(comparative, device)
    method = build_method("ckd", 10, float(teacher.var()), labelled=False)
    torch.manual_seed(0)
    model = build_student("mlp", (28, 28), 10, mean, std, {"hidden": [64]}).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def train_on(xb, tb):
        with autocast:
            loss = method.loss(model(xb), tb, None, 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    generator = torch.Generator(device=device).manual_seed(0)
    sampler = BatchSampler(data, np.arange(args.samples), True, args.batch_size, generator)

    def ours():
        rows = sampler.members()
        train_on(data.x.index_select(0, rows), data.teacher.index_select(0, rows))

    loader = torch.utils.data.DataLoader(
        NaivePairDataset(x, teacher, positives, negatives),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=0,
        drop_last=True,
    )
    iterator = iter(loader)

    def naive():
        nonlocal iterator
        try:
            xb, tb = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            xb, tb = next(iterator)
        train_on(xb.reshape(-1, 28, 28).to(device), tb.reshape(-1, 10).to(device))

    premade = []
    for _ in range(16):
        rows = sampler.members()
        premade.append((data.x[rows].clone(), data.teacher[rows].clone()))
    counter = iter(range(10**12))

    def compute_only():
        xb, tb = premade[next(counter) % len(premade)]
        train_on(xb, tb)

    results = {}
    for name, fn, steps in (
        ("a_gather", ours, args.steps),
        ("b_naive_dataset", naive, max(50, args.steps // 8)),
        ("c_compute_only", compute_only, args.steps),
    ):
        results[name] = max(measure(fn, steps, warmup=20, device=device) for _ in range(args.repeats))
    report = {
        "device": str(device) + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
        "threads": torch.get_num_threads(),
        "batch_groups": args.batch_size,
        "precision": args.precision,
        "steps_per_s": {k: round(v, 1) for k, v in results.items()},
        "a_over_b": round(results["a_gather"] / results["b_naive_dataset"], 2),
        "a_over_c": round(results["a_gather"] / results["c_compute_only"], 3),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
