"""Validation on the held-out test split: PyTorch vs ONNX Runtime accuracy, parity, latency, gates."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ckd.errors import CkdError
from ckd.export import INPUT_NAME, OUTPUT_NAME
from ckd.runtime import onnx_session


def torch_logits(model: torch.nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    model = model.to("cpu").eval()
    with torch.no_grad():
        return np.concatenate([model(torch.as_tensor(x[i:i + batch_size])).numpy()
                               for i in range(0, len(x), batch_size)])


def onnx_logits(path: str | Path, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    session = onnx_session(path)
    return np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: x[i:i + batch_size].astype(np.float32)})[0]
                           for i in range(0, len(x), batch_size)])


def latency_ms_batch1(path: str | Path, sample: np.ndarray, runs: int, warmup: int = 20) -> float:
    """Median wall time of one ONNX Runtime call on a single sample, in milliseconds (1 thread)."""
    session = onnx_session(path, threads=1)
    feed = {INPUT_NAME: sample[None].astype(np.float32)}
    for _ in range(warmup):
        session.run([OUTPUT_NAME], feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run([OUTPUT_NAME], feed)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def check_gates(metrics: dict, min_accuracy: float, max_abs_diff: float, artifact: str) -> None:
    failures = []
    if metrics["onnx_test_accuracy"] < min_accuracy:
        failures.append(f"onnx_test_accuracy {metrics['onnx_test_accuracy']:.4f} < validate.min_accuracy {min_accuracy}")
    if metrics["test_accuracy"] < min_accuracy:
        failures.append(f"test_accuracy {metrics['test_accuracy']:.4f} < validate.min_accuracy {min_accuracy}")
    if not metrics["onnx_max_abs_diff"] <= max_abs_diff:
        failures.append(f"onnx_max_abs_diff {metrics['onnx_max_abs_diff']:.3g} > validate.max_abs_diff {max_abs_diff}")
    if failures:
        raise CkdError(f"{artifact}: gate failed: " + "; ".join(failures))
