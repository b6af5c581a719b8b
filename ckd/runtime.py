"""Device and ONNX Runtime provider choice: CUDA only where it is really usable."""

from __future__ import annotations

from pathlib import Path

from ckd.errors import ConfigError


def torch_device(requested: str = "auto"):
    import torch

    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("student.device", "is 'cuda' but no usable CUDA device is present; use auto or cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def onnx_providers() -> list[str]:
    """CUDAExecutionProvider only when ORT offers it and a CUDA device is visible; else it logs errors."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        try:
            import torch

            if torch.cuda.is_available():
                return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        except ImportError:
            pass
    return ["CPUExecutionProvider"]


def onnx_session(path: str | Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=onnx_providers())
