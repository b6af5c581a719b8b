"""The comparative data set: the queried samples and groups of k positives and k negatives over them
(or k+ and k-: the paper's code draws 2 positives and 1 negative, `comparative.negatives: 1`).

Groups are distinct as sets: with k = k-, {P, N} and {N, P} carry the same information (d flips sign), so
only one is kept. They are drawn deterministically from the seed and only among queried samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ckd.data.arrays import NpzArtifact
from ckd.data.artifacts import Pool
from ckd.errors import CkdError

LOG_FLOOR = 1e-12


@dataclass
class ComparativeSet(NpzArtifact):
    """What the `build` stage writes and `train` reads (one `.npz`, no pickles)."""

    ids: np.ndarray  # [N] int64: pool ids of the queried samples that have a teacher answer
    x: np.ndarray  # [N, ...] float32: their raw inputs
    teacher: np.ndarray  # [N, C] float32: teacher logits (log-probabilities for a probability teacher)
    positives: np.ndarray  # [G, k] int64: row indices into the arrays above
    negatives: np.ndarray  # [G, k] int64: disjoint from the group's positives
    class_names: tuple[str, ...]
    is_image: bool
    norm_mean: np.ndarray  # per-feature statistics of the whole pool's raw inputs (inputs are free)
    norm_std: np.ndarray
    labels: np.ndarray | None = None  # [N] int64, only when labels may be used
    unlabelled: np.ndarray | None = None  # [M, ...] pool inputs never asked about (no answer, no label)

    def __post_init__(self) -> None:
        self.class_names = tuple(str(c) for c in np.asarray(self.class_names).reshape(-1))
        self.is_image = bool(self.is_image)
        if len(self.x) != len(self.ids) or self.teacher.shape[0] != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids, {len(self.x)} inputs and {len(self.teacher)} teacher rows")

    @property
    def num_classes(self) -> int:
        return int(self.teacher.shape[1])


def teacher_logits(scores: np.ndarray, kind: str) -> np.ndarray:
    """Logits pass through; probabilities become log-probabilities before any comparison."""
    return (np.log(np.clip(scores, LOG_FLOOR, None)) if kind == "probabilities" else scores).astype(np.float32)


def max_distinct_groups(num_samples: int, group_size: int, negatives: int | None = None) -> int:
    negatives = group_size if negatives is None else negatives
    if num_samples < group_size + negatives:
        return 0
    count = math.comb(num_samples, group_size) * math.comb(num_samples - group_size, negatives)
    return count // 2 if negatives == group_size else count  # k+k: {P, N} and {N, P} are one group


def build_groups(
    num_samples: int, group_size: int, max_groups: int, seed: int, negatives: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `max_groups` distinct groups (positives [G, k], negatives [G, k-]) over `num_samples` rows;
    k- = `negatives` (default k; the paper's code uses 2 positives and 1 negative)."""
    negatives = group_size if negatives is None else negatives
    possible = max_distinct_groups(num_samples, group_size, negatives)
    if possible == 0:
        shape = "" if negatives == group_size else f" with comparative.negatives={negatives}"
        raise CkdError(
            f"comparative.group_size={group_size}{shape} needs at least {group_size + negatives} queried samples, "
            f"have {num_samples}"
        )
    wanted = min(max_groups, possible)
    rng = np.random.default_rng(seed)
    if group_size == 1 and negatives == 1 and wanted == possible:
        i, j = np.triu_indices(num_samples, k=1)
        order = rng.permutation(len(i))
        flip = rng.random(len(i)) < 0.5  # which member is the positive: no systematic sign
        pos, neg = np.where(flip, j, i)[order], np.where(flip, i, j)[order]
        return pos[:, None].astype(np.int64), neg[:, None].astype(np.int64)
    symmetric = negatives == group_size
    groups: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}  # distinct groups, in the order drawn
    for _ in range(50 * wanted + 1000):  # more attempts: nearly exhausted, keep what is distinct
        if len(groups) == wanted:
            break
        members = rng.choice(num_samples, size=group_size + negatives, replace=False)
        pos, neg = np.sort(members[:group_size]), np.sort(members[group_size:])
        key = tuple(sorted((tuple(pos), tuple(neg)))) if symmetric else (tuple(pos), tuple(neg))
        groups.setdefault(key, (pos, neg))
    return np.asarray([g[0] for g in groups.values()], np.int64), np.asarray([g[1] for g in groups.values()], np.int64)


# Free (never-queried) pool inputs carried for the pool term: copying all made `build` grow fastest with the pool
# (245 s at 100,000 MNIST inputs; bench/scaling). FixMatch draws about one batch per step, so 20,000 cover 2,000
# steps of 128 without a repeat. Smaller pools are carried whole.
MAX_UNLABELLED = 20_000


def free_rows(pool_size: int, asked: np.ndarray, seed: int) -> np.ndarray:
    """Rows of the pool never asked about, at most MAX_UNLABELLED of them (a seeded subset, the same for
    every N with this seed)."""
    free = np.setdiff1d(np.arange(pool_size), asked)
    if len(free) > MAX_UNLABELLED:
        free = np.sort(np.random.default_rng([seed, 1]).choice(free, MAX_UNLABELLED, replace=False))
    return free


def comparative_set(
    queried_ids: np.ndarray,
    scores: np.ndarray,
    pool: Pool,
    scores_kind: str,
    group_size: int,
    max_groups: int,
    seed: int,
    negatives: int | None = None,
    statistics: tuple[np.ndarray, np.ndarray] | None = None,
    unlabelled: bool = True,
) -> ComparativeSet:
    """The comparative data set from the teacher's answers and the pool (labels only if the pool has them).
    `statistics`: the pool's `input_statistics`, when the caller already has them (a benchmark building many
    sets over one pool); `unlabelled=False` leaves out the free pool inputs (for a student that does not use
    them; `free_rows` says which they would be)."""
    from ckd.data.arrays import input_statistics

    rows = pool.rows(queried_ids, "the queried samples")
    positive_rows, negative_rows = build_groups(len(rows), group_size, max_groups, seed, negatives)
    mean, std = statistics or input_statistics(pool.x)  # inputs are free: statistics of the whole pool
    return ComparativeSet(
        ids=np.asarray(queried_ids),
        x=pool.x[rows],
        teacher=teacher_logits(scores, scores_kind),
        positives=positive_rows,
        negatives=negative_rows,
        class_names=pool.class_names,
        is_image=pool.is_image,
        norm_mean=mean,
        norm_std=std,
        labels=None if pool.labels is None else pool.labels[rows],
        unlabelled=pool.x[free_rows(len(pool.ids), rows, seed)] if unlabelled else None,
    )  # free inputs for `student.unlabelled_weight`
