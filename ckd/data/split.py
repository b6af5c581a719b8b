"""The seeded split into a pool (the only inputs the teacher may see) and a held-out test split."""

from __future__ import annotations

import numpy as np

from ckd.errors import ConfigError


def split_pool_test(num_samples: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted (pool_ids, test_ids); `test_size` is a fraction in (0, 1) or a count."""
    count = int(round(test_size * num_samples)) if test_size < 1 else int(test_size)
    if not 1 <= count <= num_samples - 2:
        raise ConfigError(
            "data.test_size", f"gives {count} test samples; allowed 1..{num_samples - 2} for {num_samples} samples"
        )
    order = np.random.default_rng(seed).permutation(num_samples)
    return np.sort(order[count:]), np.sort(order[:count])
