"""Which pool inputs to send to the teacher: exactly `teacher.budget` of them, by a named strategy.

Strategies see only inputs (never labels), since in the common case the pool is unlabelled. They are
nested: for one seed, the picks for a budget of N are the first N picks for any larger budget, so
raising the budget only adds inputs and every answer already paid for is used again.
"""

from __future__ import annotations

import numpy as np

from ckd.errors import ConfigError
from ckd.registry import Registry

SELECTIONS: Registry[np.ndarray] = Registry("selection strategy", "data.selection")


@SELECTIONS.register("random")
def select_random(pool_x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform sampling without replacement: the first `count` of a seeded permutation."""
    return rng.permutation(len(pool_x))[:count]


# k-centre costs O(N x candidates x features), the pipeline's fastest-growing cost (bench/scaling.md): N=1000
# picks over 100,000 MNIST-sized inputs would take minutes, N=10,000 hours. Candidates are a seeded random
# subset of this many (or N), drawn independently of N, so picks stay nested for every budget up to the cap.
KCENTER_MAX_CANDIDATES = 20_000


def _candidates(pool_x: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions of at most max(KCENTER_MAX_CANDIDATES, count) pool inputs, and those inputs standardised."""
    limit = max(KCENTER_MAX_CANDIDATES, count)
    candidates = np.sort(rng.permutation(len(pool_x))[:limit]) if len(pool_x) > limit else np.arange(len(pool_x))
    flat = pool_x[candidates].reshape(len(candidates), -1).astype(np.float64)
    return candidates, (flat - flat.mean(0)) / (flat.std(0) + 1e-8)


@SELECTIONS.register("kcenter")
def select_kcenter(pool_x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-centre coreset (Sener & Savarese, ICLR 2018): each pick maximises
    min_j ||x - c_j||_2 over the picks so far, so the budget covers the input space. Over at most
    max(KCENTER_MAX_CANDIDATES, count) candidates."""
    candidates, flat = _candidates(pool_x, count, rng)
    chosen = [int(rng.integers(len(flat)))]
    nearest = ((flat - flat[chosen[0]]) ** 2).sum(1)
    for _ in range(count - 1):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, ((flat - flat[pick]) ** 2).sum(1))
    return np.asarray(candidates[np.asarray(chosen)])


TYPICLUST_FIRST_ROUND = 10  # picks of the first round; each later round adds as many as were picked before
TYPICLUST_NEIGHBOURS = 20  # typicality's k (the paper's)


def typicality(points: np.ndarray) -> np.ndarray:
    """TypiClust's typicality: 1 / mean distance to the k = min(TYPICLUST_NEIGHBOURS, n - 1) nearest others."""
    k = min(TYPICLUST_NEIGHBOURS, len(points) - 1)
    if k < 1:
        return np.ones(len(points))
    squared = (points**2).sum(1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * points @ points.T, 0.0))
    np.fill_diagonal(distances, np.inf)
    return np.asarray(1.0 / (np.sort(distances, axis=1)[:, :k].mean(1) + 1e-12))


@SELECTIONS.register("typiclust")
def select_typiclust(pool_x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """TypiClust (Hacohen, Dekel & Weinshall, ICML 2022), in its own rounds: with L picks so far and B to
    add, k-means the (standardised) pool into L + B clusters and take, from each of the B largest clusters
    holding no pick yet, its most typical member, argmax_x 1 / mean_{y in kNN(x)} ||x - y||_2 (within the
    cluster): dense, representative inputs first, one per region (the low-budget regime where random and
    k-centre lose). Rounds add 10, 10, 20, 40, ... picks whatever `count` is, so picks stay nested. Over at
    most max(KCENTER_MAX_CANDIDATES, count) candidates, as k-centre."""
    from sklearn.cluster import KMeans

    candidates, flat = _candidates(pool_x, count, rng)
    chosen: list[int] = []
    while len(chosen) < count:
        adding = min(max(len(chosen), TYPICLUST_FIRST_ROUND), len(flat) - len(chosen))
        clusters = min(len(chosen) + adding, len(flat))
        assignment = KMeans(clusters, n_init=1, random_state=int(rng.integers(2**31))).fit_predict(flat)
        taken = np.zeros(len(flat), dtype=bool)
        taken[chosen] = True
        sizes = np.bincount(assignment, minlength=clusters)
        covered = np.bincount(assignment[taken], minlength=clusters) > 0
        # uncovered clusters, largest first (ties: lower cluster id); then covered ones, should too few be left
        order = sorted(range(clusters), key=lambda c: (bool(covered[c]), -int(sizes[c]), c))
        for cluster in order:
            if adding == 0:
                break
            members = np.flatnonzero((assignment == cluster) & ~taken)
            if len(members) == 0:
                continue
            chosen.append(int(members[np.argmax(typicality(flat[members]))]))
            taken[chosen[-1]] = True
            adding -= 1
    return np.asarray(candidates[np.asarray(chosen[:count])])


def select_for_teacher(pool_ids: np.ndarray, pool_x: np.ndarray, budget: int, strategy: str, seed: int) -> np.ndarray:
    """Return `budget` distinct pool ids (sorted) chosen by `strategy`."""
    if not 1 <= budget <= len(pool_ids):
        raise ConfigError("teacher.budget", f"must be in 1..{len(pool_ids)} (the pool size), got {budget}")
    picks = SELECTIONS.get(strategy)(pool_x, budget, np.random.default_rng(seed))
    return np.sort(pool_ids[np.asarray(picks)])
