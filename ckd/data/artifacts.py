"""What the `sample` stage writes: the pool, the held-out test split and the selection (one `.npz` each)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckd.data.arrays import NpzArtifact
from ckd.errors import CkdError


@dataclass
class Pool(NpzArtifact):
    """The inputs the teacher may be asked about: raw `x` [n, ...] under pool `ids` [n]; `labels` [n]
    only when labels may be used (`data.use_labels` and the source has them)."""

    ids: np.ndarray
    x: np.ndarray
    class_names: tuple[str, ...]
    is_image: bool
    labels: np.ndarray | None = None
    text: np.ndarray | None = None  # [n] str: the raw texts of a text source (`x` holds their embeddings)

    def __post_init__(self) -> None:
        self.class_names = tuple(str(c) for c in np.asarray(self.class_names).reshape(-1))
        self.is_image = bool(self.is_image)
        _check_text(self.text, len(self.ids))
        if len(self.x) != len(self.ids) or (self.labels is not None and len(self.labels) != len(self.ids)):
            raise ValueError(
                f"{len(self.ids)} ids, {len(self.x)} inputs and "
                f"{'no' if self.labels is None else len(self.labels)} labels do not match"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def rows(self, ids: np.ndarray, where: str = "the selection") -> np.ndarray:
        """Positions of pool `ids` in the pool; an id not in the pool is one line naming `where`."""
        position = {int(i): n for n, i in enumerate(self.ids)}
        missing = [int(i) for i in ids if int(i) not in position]
        if missing:
            raise CkdError(f"{where}: ids {missing[:5]} are not in the pool")
        return np.asarray([position[int(i)] for i in ids], dtype=np.int64)


@dataclass
class TestSet(NpzArtifact):
    """The held-out split: nothing but `validate` (and the benchmark's accuracy) reads it."""

    __test__ = False  # not a pytest class
    ids: np.ndarray
    x: np.ndarray
    labels: np.ndarray
    text: np.ndarray | None = None  # [n] str, as in Pool

    def __post_init__(self) -> None:
        _check_text(self.text, len(self.ids))


def _check_text(text: np.ndarray | None, n: int) -> None:
    if text is not None and (text.dtype.kind not in "US" or text.shape != (n,)):
        raise ValueError(f"'text' must hold one string per sample ({n}), got {text.dtype} {text.shape}")


@dataclass
class Selection(NpzArtifact):
    """The pool ids the teacher is asked about (exactly teacher.budget of them, sorted), and the digest of the
    `student` settings `sample` checked against this pool (`ckd.preflight.student_digest`; None: not checked)."""

    ids: np.ndarray
    checked_student: str | None = None

    def __post_init__(self) -> None:
        if self.checked_student is not None:
            self.checked_student = str(np.asarray(self.checked_student))
