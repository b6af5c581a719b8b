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


# k-centre costs O(N x candidates x features), the fastest-growing cost of the pipeline (bench/scaling.md):
# N=1000 picks over a pool of 100,000 MNIST-sized inputs would take minutes, N=10,000 hours. Candidates
# are capped: a seeded random subset of this many pool inputs (or of N, if larger), drawn before the first
# pick and independent of N, so picks stay nested for every budget up to the cap.
KCENTER_MAX_CANDIDATES = 20_000


@SELECTIONS.register("kcenter")
def select_kcenter(pool_x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-centre coreset (Sener & Savarese, ICLR 2018): each pick maximises
    min_j ||x - c_j||_2 over the picks so far, so the budget covers the input space. Over at most
    max(KCENTER_MAX_CANDIDATES, count) candidates."""
    limit = max(KCENTER_MAX_CANDIDATES, count)
    candidates = np.sort(rng.permutation(len(pool_x))[:limit]) if len(pool_x) > limit else np.arange(len(pool_x))
    flat = pool_x[candidates].reshape(len(candidates), -1).astype(np.float64)
    flat = (flat - flat.mean(0)) / (flat.std(0) + 1e-8)
    chosen = [int(rng.integers(len(flat)))]
    nearest = ((flat - flat[chosen[0]]) ** 2).sum(1)
    for _ in range(count - 1):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, ((flat - flat[pick]) ** 2).sum(1))
    return candidates[np.asarray(chosen)]


def select_for_teacher(pool_ids: np.ndarray, pool_x: np.ndarray, budget: int, strategy: str, seed: int) -> np.ndarray:
    """Return `budget` distinct pool ids (sorted) chosen by `strategy`."""
    if not 1 <= budget <= len(pool_ids):
        raise ConfigError("teacher.budget", f"must be in 1..{len(pool_ids)} (the pool size), got {budget}")
    picks = SELECTIONS.get(strategy)(pool_x, budget, np.random.default_rng(seed))
    return np.sort(pool_ids[np.asarray(picks)])
