"""The teacher protocol every backend implements, and the registry that builds them."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ckd.registry import Registry


class Teacher(Protocol):
    """A paid black box. `identity` keys its stored outputs: a new teacher never mixes with an old one."""

    identity: str
    num_classes: int | None  # known before any call when the backend declares it, else None

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        """Raise TeacherError, before any paid call, if inputs of this shape cannot be sent."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores [batch, classes] for raw inputs [batch, *sample_shape]; each call is paid."""


TEACHERS: Registry[Teacher] = Registry("teacher backend", "teacher.kind")


def build_teacher(kind: str, model: str, output: str | None, options: dict[str, Any] | None = None) -> Teacher:
    return TEACHERS.build(kind, model=model, output=output, **dict(options or {}))
