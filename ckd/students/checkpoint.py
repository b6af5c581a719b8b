"""The student checkpoint the `train` stage writes: the weights beside what rebuilds the model."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ckd.data.arrays import fsync_dir
from ckd.errors import CkdError
from ckd.students.base import build_student


@dataclass
class StudentCheckpoint:
    state_dict: dict[str, torch.Tensor]
    arch: str
    arch_args: dict[str, Any]
    sample_shape: list[int]
    num_classes: int
    class_names: list[str]
    method: str
    chosen: dict[str, Any]  # the candidate picked on validation: lr and method arguments
    teacher_samples: int  # queried samples it learned from
    # Pool ids of the queried samples kept out of training (validation, no refit): where a source has no
    # labelled test set, `validate` measures agreement with the teacher on them. Empty after a refit.
    held_out_ids: list[int] = dataclasses.field(default_factory=list)

    def save(self, path: str | Path) -> None:
        """Atomically (temp file, fsync, rename): a crash never leaves a torn checkpoint."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(dataclasses.asdict(self), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)

    @classmethod
    def load(cls, path: str | Path) -> StudentCheckpoint:
        """weights_only: no pickled code is ever loaded."""
        path = Path(path)
        if not path.is_file():
            raise CkdError(f"{path}: student checkpoint not found")
        try:
            values = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise CkdError(f"{path}: not a readable student checkpoint ({str(error).splitlines()[0]})") from None
        names = [f.name for f in dataclasses.fields(cls)]
        optional = {f.name for f in dataclasses.fields(cls) if f.default_factory is not dataclasses.MISSING}
        missing = [n for n in names if n not in optional and (not isinstance(values, dict) or n not in values)]
        if missing:
            raise CkdError(f"{path}: not a student checkpoint (lacks {', '.join(missing)})")
        return cls(**{name: values[name] for name in names if name in values})

    def model(self) -> torch.nn.Module:
        """The student in eval mode, its input normalisation read back from the weights."""
        mean, std = self.state_dict["normalize.mean"].numpy(), self.state_dict["normalize.std"].numpy()
        model = build_student(self.arch, self.sample_shape, self.num_classes, mean, std, self.arch_args)
        model.load_state_dict(self.state_dict)
        return model.eval()
