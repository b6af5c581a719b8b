"""Latency of the student in each runtime: the median wall time of one call, in milliseconds, on one
thread, at a given batch size. Runtimes: PyTorch, ONNX Runtime (fp32 or int8 file) and OpenVINO."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ckd.export import INPUT_NAME, OUTPUT_NAME
from ckd.runtime import onnx_session

BATCH_SIZES = (1, 256)


def median_ms(call: Callable[[], object], runs: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def batch_of(x: np.ndarray, batch_size: int) -> np.ndarray:
    """The first `batch_size` samples of `x`, repeated when `x` has fewer."""
    rows = np.arange(batch_size) % len(x)
    return np.ascontiguousarray(x[rows], dtype=np.float32)


def torch_runner(model: Any, x: np.ndarray) -> Callable[[], object]:
    import torch

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

    core = ov.Core()
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads} if threads else {}
    # f32 inference precision: the CPU plugin would otherwise pick bf16 where the CPU has it, breaking parity.
    config["INFERENCE_PRECISION_HINT"] = "f32"
    return core.compile_model(core.read_model(str(path)), "CPU", config)


def openvino_logits(path: str | Path, x: np.ndarray) -> np.ndarray:
    compiled = openvino_model(path, threads=None)
    return np.asarray(compiled(np.asarray(x, np.float32))[compiled.output(OUTPUT_NAME)])


def openvino_runner(path: str | Path, x: np.ndarray) -> Callable[[], object]:
    compiled = openvino_model(path)
    request = compiled.create_infer_request()
    return lambda: request.infer({INPUT_NAME: x})


def measure(
    runners: dict[str, Callable[[np.ndarray], Callable[[], object]]],
    sample_x: np.ndarray,
    runs: int,
    batch_sizes: Any = BATCH_SIZES,
) -> dict[str, float]:
    """`latency_ms_batch{b}_{runtime}` for each runtime and batch size (`latency_ms_batch{b}` for the runtime
    named ""); big batches get fewer runs."""
    figures = {}
    for batch_size in batch_sizes:
        x = batch_of(sample_x, batch_size)
        repeats = runs if batch_size == 1 else max(10, runs // 10)
        for name, make in runners.items():
            figures[f"latency_ms_batch{batch_size}" + (f"_{name}" if name else "")] = median_ms(make(x), repeats)
    return figures
