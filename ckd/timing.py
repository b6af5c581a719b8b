"""Wall-time measurement shared by the latency figures (`ckd.latency`) and the text bundle
(`ckd.text_bundle`); imports neither torch nor onnxruntime, so the torch-free bundle can use it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(call: Callable[[], object], runs: int, warmup: int = 10) -> float:
    """The median wall time of `call()` over `runs` calls after `warmup` untimed ones, in milliseconds
    (garbage collection left on, as in a service)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
