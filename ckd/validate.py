"""Validation on the held-out test split: PyTorch vs ONNX Runtime accuracy, parity, latency, gates."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ckd.errors import CkdError
from ckd.export import INPUT_NAME, OUTPUT_NAME
from ckd.runtime import onnx_session


def torch_logits(model: torch.nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    model = model.to("cpu").eval()
    with torch.no_grad():
        return np.concatenate(
            [model(torch.as_tensor(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
        )


def onnx_logits(path: str | Path, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    session = onnx_session(path)
    x = np.asarray(x, np.float32)
    return np.concatenate(
        [session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)]
    )


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


# What `validate` measures: accuracy on the labelled test split, or, for a source without one, the
# agreement of the student's argmax with the teacher's on the queried samples held out of training.
SCORE_KEYS = {
    "test": ("test_accuracy", "onnx_test_accuracy", "int8_test_accuracy"),
    "agreement": ("teacher_agreement", "onnx_teacher_agreement", "int8_teacher_agreement"),
}


def score_keys(metrics: Mapping[str, Any]) -> tuple[str, str, str]:
    """(PyTorch, ONNX Runtime, int8) keys of the figure `metrics` hold: test accuracy or teacher agreement."""
    return SCORE_KEYS["test"] if "test_accuracy" in metrics else SCORE_KEYS["agreement"]


def check_gates(
    metrics: dict[str, Any], min_accuracy: float, max_abs_diff: float, artifact: str, max_int8_drop: float | None = None
) -> None:
    """`validate.min_accuracy` gates test accuracy, or the teacher agreement where there is no test set. A failed
    gate says what it gated (the figure, on how many samples), and the setting that would let it pass."""
    torch_key, onnx_key, int8_key = score_keys(metrics)
    size = metrics.get("test_size", metrics.get("agreement_size"))
    on = f" on {size} held-out samples" if size is not None else ""
    failures, relax = [], {}
    if max_int8_drop is not None and int8_key in metrics:
        if (drop := metrics[onnx_key] - metrics[int8_key]) > max_int8_drop + 1e-12:
            failures.append(
                f"int8 {'accuracy' if torch_key == 'test_accuracy' else 'agreement'} drop {drop:.4f} (onnx "
                f"{metrics[onnx_key]:.4f} - int8 {metrics[int8_key]:.4f}){on} > validate.max_int8_drop {max_int8_drop}"
            )
            relax["validate.max_int8_drop"] = math.ceil(drop * 100) / 100  # the hundredth above
    for key in (onnx_key, torch_key):
        if metrics[key] < min_accuracy:
            failures.append(f"{key} {metrics[key]:.4f}{on} < validate.min_accuracy {min_accuracy}")
            below = math.floor(metrics[key] * 100) / 100  # the hundredth below
            relax["validate.min_accuracy"] = min(relax.get("validate.min_accuracy", 1.0), below)
    if not metrics["onnx_max_abs_diff"] <= max_abs_diff:
        failures.append(f"onnx_max_abs_diff {metrics['onnx_max_abs_diff']:.3g} > validate.max_abs_diff {max_abs_diff}")
        relax["validate.max_abs_diff"] = float(f"{metrics['onnx_max_abs_diff'] * 1.5:.2g}")
    if failures:
        settings = " ".join(f"-S {key}={value:g}" for key, value in relax.items())
        raise CkdError(
            f"{artifact}: gate failed: " + "; ".join(failures) + " (the metrics are written all the same); to "
            f"accept this student, relax the gate in params.yaml or `dvc exp run {settings}`"
        )
