"""A test backend: an ONNX teacher that records, durably, every sample it may compute.

The count is appended (and fsynced) before the computation, so it is an upper bound on what the
teacher computed, also when the process is killed mid-call. Optional `delay_s` slows each batch so a
test can kill the `query` stage between batches.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from ckd.teachers.base import TEACHERS
from ckd.teachers.onnx_file import OnnxFileTeacher, OnnxTeacherConfig


class CountingTeacherConfig(OnnxTeacherConfig):
    """`teacher.kind: counting` (tests): the ONNX teacher plus a durable count of what it computed."""

    kind: Literal["counting"] = "counting"  # type: ignore[assignment]
    count_file: str = Field("teacher_counts.log", min_length=1)
    delay_s: float = Field(0.0, ge=0, le=60)


@TEACHERS.register("counting")
class CountingTeacher(OnnxFileTeacher):
    config_model = CountingTeacherConfig  # type: ignore[assignment]

    @classmethod
    def from_config(cls, config: CountingTeacherConfig) -> CountingTeacher:  # type: ignore[override]
        return cls(config.model, config.output, config.count_file, config.delay_s)

    def __init__(
        self, model: str, output: str | None = None, count_file: str = "teacher_counts.log", delay_s: float = 0.0
    ):
        super().__init__(model, output)
        self.count_file = Path(count_file)
        self.delay_s = float(delay_s)

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.count_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.count_file, "a") as handle:
            handle.write(f"{len(x)} {os.getpid()}\n")  # the pid lets a test kill the process mid-batch
            handle.flush()
            os.fsync(handle.fileno())
        time.sleep(self.delay_s)
        return super().predict(x)


def computed_samples(count_file: str | Path) -> int:
    """How many samples the counting teacher may have computed, across all processes."""
    path = Path(count_file)
    return sum(int(line.split()[0]) for line in path.read_text().splitlines() if line.strip()) if path.exists() else 0


def computing_pids(count_file: str | Path) -> list[int]:
    """The processes that asked the counting teacher, in the order of their batches."""
    path = Path(count_file)
    lines = path.read_text().splitlines() if path.exists() else []
    return [int(line.split()[1]) for line in lines if len(line.split()) == 2]
