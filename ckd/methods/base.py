"""The method protocol and the shared loss pieces (group differences, KD's softened KL, the label term)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ckd.errors import ConfigError
from ckd.methods import METHODS


class Method:
    """A training objective on cached teacher scores.

    `loss(s, t, y, group_size)` gets the student's logits `s` [M, C], the teacher's scores `t` [M, C]
    (logits, or log-probabilities for a probability teacher) and label targets `y` [M, C] as
    probabilities (one-hot, or mixed) or None without labels. Group methods get M = B * (k+ + k-) members
    laid out group by group: k+ positives, then k- negatives (`group_size` is k, or (k+, k-)).
    """

    uses_groups = False
    uses_labels = False  # reports, once, that label terms are off when the data has none
    # The weight of the label term CE(y) (`with_ce`): no default, so a method that calls `with_ce` without
    # setting it fails loudly instead of silently losing its label term.
    w_ce: float

    def __init__(self, num_classes: int, teacher_var: float, labelled: bool) -> None:
        self.num_classes = num_classes
        self.teacher_var = max(float(teacher_var), 1e-8)
        self.labelled = labelled

    def mix(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Transform a batch before the forward pass (identity except for mixup)."""
        return x, t, y

    def loss(
        self, s: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None, group_size: GroupSize | None
    ) -> torch.Tensor:
        raise NotImplementedError

    def with_ce(self, loss: torch.Tensor, s: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """loss + w_ce CE(y, softmax(s)): the per-sample label term, only with labels."""
        return loss + self.w_ce * soft_cross_entropy(s, y) if self.w_ce and y is not None else loss


def build_method(name: str, num_classes: int, teacher_var: float, labelled: bool, **hparams: Any) -> Method:
    return METHODS.build(name, num_classes=num_classes, teacher_var=teacher_var, labelled=labelled, **hparams)


def positive(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"student.method_args.{name}", f"must be a number >= 0, got {value!r}")
    return float(value)


def soft_cross_entropy(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE(y, softmax(s)) with probability targets y (one-hot or mixed)."""
    return -(y * F.log_softmax(s, dim=-1)).sum(-1).mean()


def kd_term(s: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton, Vinyals, Dean 2015: T^2 * KL(softmax(t/T) || softmax(s/T)), mean over samples."""
    log_p_t = F.log_softmax(t / temperature, dim=-1)
    log_p_s = F.log_softmax(s / temperature, dim=-1)
    return temperature**2 * (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()


GroupSize = int | tuple[int, int]  # k (k positives and k negatives) or (positives, negatives), e.g. the paper's 2+1


def group_difference(values: torch.Tensor, group_size: GroupSize) -> torch.Tensor:
    """d = mean(values of the positives) - mean(values of the negatives), per group: [B, C]; members are laid
    out group by group, positives first."""
    positives, negatives = (group_size, group_size) if isinstance(group_size, int) else map(int, group_size)
    grouped = values.reshape(-1, positives + negatives, values.shape[-1])
    return grouped[:, :positives].mean(1) - grouped[:, positives:].mean(1)


def require_groups(group_size: GroupSize | None, method: str) -> GroupSize:
    if group_size is None:
        raise ValueError(f"{method} is a group method and needs group batches")
    return group_size
