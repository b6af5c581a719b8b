"""Shared pieces of every student: the input normalisation that travels inside the model (and the
ONNX graph), and the registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ckd.errors import ConfigError
from ckd.students import STUDENTS


class Normalize(nn.Module):
    """x -> (x - mean) / std with per-feature statistics of the pool's raw inputs (inputs are free;
    only teacher calls cost), so the deployed model takes raw inputs like the teacher."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def image_shape(sample_shape: Sequence[int], arch: str) -> tuple[int, ...]:
    """[C, H, W] of an image student's inputs (one channel for [H, W])."""
    if len(sample_shape) not in (2, 3):
        raise ConfigError("student.arch", f"{arch!r} needs image inputs [H, W] or [C, H, W], got {tuple(sample_shape)}")
    return (1, *sample_shape) if len(sample_shape) == 2 else tuple(sample_shape)


def build_student(
    arch: str,
    sample_shape: Sequence[int],
    num_classes: int,
    mean: np.ndarray,
    std: np.ndarray,
    arch_args: dict[str, Any] | None = None,
) -> nn.Module:
    return STUDENTS.build(
        arch,
        sample_shape=tuple(sample_shape),
        num_classes=num_classes,
        normalize=Normalize(mean, std),
        **dict(arch_args or {}),
    )
