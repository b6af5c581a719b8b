"""`train`: the student (`student.method`), model selection on validation data only (`ckd.train`)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from ckd.comparative import ComparativeSet
from ckd.config import StudentConfig
from ckd.runtime import torch_device
from ckd.students.checkpoint import StudentCheckpoint
from ckd.train import train_student

CURVE_FIELDS = ["step", "train_loss", "val_accuracy", "val_xent"]


def train(student: StudentConfig, data: ComparativeSet,
          progress: bool = True) -> tuple[StudentCheckpoint, list[dict], dict]:
    """Returns the checkpoint, the winner's validation curve and the metrics."""
    device = torch_device(student.device)
    start = time.perf_counter()
    outcome = train_student(data, student, device, progress)
    seconds = time.perf_counter() - start
    checkpoint = StudentCheckpoint(
        state_dict={k: v.cpu() for k, v in outcome.model.state_dict().items()}, arch=student.arch,
        arch_args=dict(student.arch_args), sample_shape=list(data.x.shape[1:]), num_classes=data.num_classes,
        class_names=list(data.class_names), method=student.method,
        chosen={"lr": outcome.chosen.lr, **outcome.chosen.method_args}, teacher_samples=int(len(data.x)))
    metrics = {"method": student.method, "val_accuracy": outcome.val_accuracy, "best_step": outcome.best_step,
               "chosen": checkpoint.chosen, "selection": outcome.selection, "device": outcome.device,
               "train_seconds": round(seconds, 2), "augment": outcome.augment, "refit": student.refit}
    return checkpoint, outcome.curve, metrics


def write_curve(path: str | Path, curve: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows(curve)
