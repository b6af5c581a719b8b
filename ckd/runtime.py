"""Device, threads and ONNX Runtime provider choice: CUDA only where it is really usable; on the CPU, no
more threads than the process may use, and one thread for students too small to gain from more."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ckd.errors import ConfigError

if TYPE_CHECKING:  # imported where used: a stage that needs neither does not load them
    import onnxruntime as ort
    import torch


def torch_device(requested: str = "auto") -> torch.device:
    import torch

    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("student.device", "is 'cuda' but no usable CUDA device is present; use auto or cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# Below this many FLOPs in one sample's forward pass a student trains faster on one thread: the step is too
# small to pay for waking a thread team, which beside a busy process waits for a core on every step
# (bench/threads.md: break-even near 1 M parameters, 2 M FLOPs a sample). Work, not parameters: the CIFAR-10
# conv student (94.5 k parameters, 20 M FLOPs) trained in 706 s on one thread, 406 s on two (bench/cifar10).
SMALL_STUDENT_FLOPS = 2_000_000


def available_cores() -> int:
    """The cores this process may run on (its affinity mask: a container's or taskset's limit), not the
    machine's count, which torch and ONNX Runtime use by default."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def forward_flops(model: torch.nn.Module, sample_shape: tuple[int, ...]) -> int:
    """Floating-point operations of the model's forward pass on one sample (torch's FLOP counter: matrix
    products and convolutions), counted on a zero input on the model's device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros((1, *sample_shape), device=device))
    return int(counter.get_total_flops())


def resolve_threads(requested: str | int, flops_per_sample: int) -> int:
    """`student.threads`: an integer as given; `auto`: 1 below SMALL_STUDENT_FLOPS, else the cores."""
    if requested != "auto":
        return int(requested)
    return 1 if flops_per_sample < SMALL_STUDENT_FLOPS else available_cores()


def set_torch_threads(threads: int) -> None:
    """Intra-op threads for this process; inter-op threads too, which torch allows only once per process
    and only before any parallel work (later calls keep the first value)."""
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)


def onnx_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime session on `threads` intra-op threads (default: the cores this process may use;
    ORT's own default counts the machine's cores), one inter-op thread, and idle threads that sleep
    instead of spinning, so that a busy neighbour does not slow every call down. CUDAExecutionProvider only
    when ORT offers it and a CUDA device is visible (else it logs errors)."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        with contextlib.suppress(ImportError):
            import torch

            if torch.cuda.is_available():
                providers.insert(0, "CUDAExecutionProvider")

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)
