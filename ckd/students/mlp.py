"""A multi-layer perceptron on flattened raw inputs: the small, fast default student."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from ckd.errors import ConfigError
from ckd.students.base import Normalize


class MLPStudent(nn.Module):
    """normalise -> flatten -> [Linear -> ReLU] * len(hidden) -> Linear(classes)."""

    def __init__(
        self, sample_shape: Sequence[int], num_classes: int, normalize: Normalize, hidden: Sequence[int] = (64,)
    ) -> None:
        super().__init__()
        if not all(isinstance(h, int) and h >= 1 for h in hidden):
            raise ConfigError("student.arch_args.hidden", f"must be a list of integers >= 1, got {hidden!r}")
        self.normalize = normalize
        widths = [math.prod(sample_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths, widths[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(self.normalize(x))
