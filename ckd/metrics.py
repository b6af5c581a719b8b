"""What DVC shows: metrics files of numbers only, and the training curves logged with DVCLive.

`dvc metrics show` / `dvc exp show` put every key of a metrics file in a column (nested keys as `val.accuracy`),
so a metrics file holds numbers only: a bool becomes 0/1; text and lists are logged instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch only where a probe runs: every stage writes its metrics through this module
    import torch

log = logging.getLogger(__name__)

# The curve's columns (`ckd.train.fit`) and the names they are plotted under: `dvc.yaml`'s `plots:` read
# `<log dir>/plots/metrics/<name>.tsv`.
CURVE_METRICS = {
    "train_loss": "train/loss",
    "val_accuracy": "val/accuracy",
    "val_xent": "val/xent",
    "test_accuracy": "test/accuracy",
}


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of `metrics` (nested mappings kept, bools as 0/1); everything else left out."""
    kept: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping) and (nested := numeric_metrics(value)):
            kept[key] = nested
        elif isinstance(value, (bool, np.bool_)):
            kept[key] = int(value)
        elif isinstance(value, (int, float, np.integer, np.floating)):
            kept[key] = value.item() if isinstance(value, np.generic) else value
    return kept


def write_metrics(path: str | Path, metrics: Mapping[str, Any]) -> None:
    """Write the numbers of `metrics` to `path` (JSON); log the rest on one line."""
    numbers = numeric_metrics(metrics)
    if rest := {key: value for key, value in metrics.items() if key not in numbers}:
        log.info("not metrics (text or lists): %s", json.dumps(rest, sort_keys=True, default=str))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(numbers, indent=2, sort_keys=True) + "\n")


def accuracy_probe(x: np.ndarray, labels: np.ndarray, name: str) -> Callable[[int, torch.nn.Module], dict[str, float]]:
    """An evaluation hook for `ckd.train`: accuracy of the model on (x, labels), on the model's device.
    For the test split this is for the plot only; selection never sees it."""
    import torch

    inputs, targets = torch.as_tensor(np.asarray(x, np.float32)), torch.as_tensor(np.asarray(labels))

    def probe(step: int, model: torch.nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        correct = 0
        for start in range(0, len(inputs), 1024):
            logits = model(inputs[start : start + 1024].to(device))
            correct += int((logits.argmax(-1).cpu() == targets[start : start + 1024]).sum())
        return {name: correct / max(len(inputs), 1)}

    return probe


def write_training_log(directory: str | Path, curve: list[dict[str, float]], summary: Mapping[str, Any]) -> None:
    """The chosen candidate's curve, one DVCLive series per column (`CURVE_METRICS`), and `summary`
    (numbers only) as `<directory>/metrics.json`, the train stage's one metrics file."""
    from dvclive import Live

    # no experiment, no dvc.yaml of its own, no report: DVC runs this stage and dvc.yaml declares the plots
    with Live(dir=str(directory), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        for point in curve:
            live.step = int(point["step"])
            for column, name in CURVE_METRICS.items():
                if column in point:
                    live.log_metric(name, float(point[column]))
    # The stage's result, not DVCLive's summary of the curve's last point (which holds test accuracy).
    write_metrics(Path(directory) / "metrics.json", summary)
