"""Latency of the student in each runtime: the median wall time of one call, in milliseconds, on one
thread, at a given batch size. Runtimes: PyTorch, ONNX Runtime (fp32 or int8 file) and OpenVINO."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ckd.export import INPUT_NAME, OUTPUT_NAME
from ckd.runtime import onnx_session
from ckd.timing import median_ms

BATCH_SIZES = (1, 256)


def torch_runner(model: Any, x: np.ndarray) -> Callable[[], object]:
    model = model.to("cpu").eval()
    batch = torch.as_tensor(x)

    def call() -> object:
        with torch.inference_mode():
            return model(batch)

    return call


def onnx_runner(path: str | Path, x: np.ndarray) -> Callable[[], object]:
    session = onnx_session(path, threads=1)
    feed = {INPUT_NAME: x}
    return lambda: session.run([OUTPUT_NAME], feed)


def openvino_model(path: str | Path, threads: int | None = 1) -> Any:
    """The ONNX file read and compiled by OpenVINO's runtime for the CPU (no conversion tool, no telemetry)."""
    import openvino as ov

    # f32 inference precision: the CPU plugin would otherwise pick bf16 where the CPU has it, breaking parity.
    config = {"INFERENCE_PRECISION_HINT": "f32", **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
    return ov.Core().compile_model(str(path), "CPU", config)


def openvino_logits(path: str | Path, x: np.ndarray) -> np.ndarray:
    compiled = openvino_model(path, threads=None)
    return np.asarray(compiled(np.asarray(x, np.float32))[compiled.output(OUTPUT_NAME)])


def openvino_runner(path: str | Path, x: np.ndarray) -> Callable[[], object]:
    request = openvino_model(path).create_infer_request()
    return lambda: request.infer({INPUT_NAME: x})


def measure(
    runners: dict[str, Callable[[np.ndarray], Callable[[], object]]], sample_x: np.ndarray, runs: int
) -> dict[str, float]:
    """`latency_ms_batch{b}_{runtime}` for each runtime and batch size (`latency_ms_batch{b}` for the runtime
    named ""); big batches get fewer runs."""
    figures = {}
    for batch_size in BATCH_SIZES:
        # the first `batch_size` samples, repeated when there are fewer
        x = np.ascontiguousarray(sample_x[np.arange(batch_size) % len(sample_x)], dtype=np.float32)
        repeats = runs if batch_size == 1 else max(10, runs // 10)
        for name, make in runners.items():
            figures[f"latency_ms_batch{batch_size}" + (f"_{name}" if name else "")] = median_ms(make(x), repeats)
    return figures
