"""The teacher protocol every backend implements, and the registry that builds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ckd.errors import TeacherError
from ckd.registry import Registry


class Teacher(Protocol):
    """A paid black box. `identity` keys its stored outputs: a new teacher never mixes with an old one."""

    identity: str
    num_classes: int | None  # known before any call when the backend declares it, else None

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        """Raise TeacherError, before any paid call, if inputs of this shape cannot be sent."""

    def predict(self, x: np.ndarray) -> np.ndarray | ScoredAnswer:
        """Scores [batch, classes] for raw inputs [batch, *sample_shape] (texts: [batch] strings); each call
        is paid. A backend may set `batch_limit` (inputs per call; 1 = one request per input).

        Raise `TeacherRefused` for a definite refusal (nothing computed) and `OutcomeUnknown` when the
        request may have been computed but no answer came back (a timeout, a reset connection)."""


@dataclass
class ScoredAnswer:
    """Scores plus per-sample arrays stored beside them (tokens spent, how the scores were made)."""

    scores: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class TeacherRefused(Exception):
    """A definite refusal: the teacher said no, nothing was computed, nothing is billed."""


class AnswerUnusable(Exception):
    """An answer came back (so it was computed and is paid) but cannot be used; `raw` is kept apart."""

    def __init__(self, message: str, raw: str = "", extras: dict[str, np.ndarray] | None = None):
        super().__init__(message)
        self.raw = raw
        self.extras = extras or {}


class OutcomeUnknown(Exception):
    """The request left and no answer came back: it may have been computed, so it stays counted."""


def check_declared_fit(where: str, input_name: str, sample_dims: list, output_name: str,
                       teacher_classes: int | None, sample_shape: tuple[int, ...], num_classes: int) -> None:
    """The checks every backend makes from its declared input and output, before any paid call."""
    if not all(isinstance(d, int) and d > 0 for d in sample_dims):
        raise TeacherError(f"{where}: teacher input {input_name} must have fixed sizes after the batch axis, "
                           f"has {list(sample_dims)}")
    wanted, have = int(np.prod(sample_dims)), int(np.prod(sample_shape))
    if wanted != have:
        raise TeacherError(f"{where}: teacher input {input_name} takes {wanted} values per sample "
                           f"{tuple(sample_dims)}, the data has {have} {tuple(sample_shape)}")
    if teacher_classes is not None and teacher_classes != num_classes:
        raise TeacherError(f"{where}: teacher output {output_name} has {teacher_classes} classes, "
                           f"the data has {num_classes}")


TEACHERS: Registry[Teacher] = Registry("teacher backend", "teacher.kind")


def build_teacher(config) -> Teacher:
    """Build the backend `config.kind` (a TeacherConfig) through its `from_config`."""
    return TEACHERS.get(config.kind).from_config(config)
