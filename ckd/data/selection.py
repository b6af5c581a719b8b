"""Which pool inputs to send to the teacher: exactly `teacher.budget` of them, by a named strategy.

Strategies see only inputs (never labels), since in the common case the pool is unlabelled. They are
nested: for one seed, the picks for a budget of N are the first N picks for any larger budget, so
raising the budget only adds inputs and every answer already paid for is used again.
"""

from __future__ import annotations

import numpy as np

from ckd.errors import ConfigError
from ckd.registry import Registry

SELECTIONS: Registry = Registry("selection strategy", "data.selection")


@SELECTIONS.register("random")
def select_random(pool_x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform sampling without replacement: the first `count` of a seeded permutation."""
    return rng.permutation(len(pool_x))[:count]


@SELECTIONS.register("kcenter")
def select_kcenter(pool_x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-centre coreset (Sener & Savarese, ICLR 2018): each pick maximises
    min_j ||x - c_j||_2 over the picks so far, so the budget covers the input space."""
    flat = pool_x.reshape(len(pool_x), -1).astype(np.float64)
    flat = (flat - flat.mean(0)) / (flat.std(0) + 1e-8)
    chosen = [int(rng.integers(len(flat)))]
    nearest = ((flat - flat[chosen[0]]) ** 2).sum(1)
    for _ in range(count - 1):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, ((flat - flat[pick]) ** 2).sum(1))
    return np.asarray(chosen)


def select_for_teacher(pool_ids: np.ndarray, pool_x: np.ndarray, budget: int, strategy: str, seed: int) -> np.ndarray:
    """Return `budget` distinct pool ids (sorted) chosen by `strategy`."""
    if not 1 <= budget <= len(pool_ids):
        raise ConfigError("teacher.budget", f"must be in 1..{len(pool_ids)} (the pool size), got {budget}")
    picks = SELECTIONS.get(strategy)(pool_x, budget, np.random.default_rng(seed))
    return np.sort(pool_ids[np.asarray(picks)])
