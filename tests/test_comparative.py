import numpy as np
import pytest

from ckd.comparative import build_groups, max_distinct_groups, teacher_logits
from ckd.errors import CkdError


@pytest.mark.parametrize("group_size,max_groups", [(1, 50), (1, 10_000), (2, 300), (3, 100)])
def test_groups_distinct_deterministic_and_within_queried(group_size, max_groups):
    n = 30
    pos, neg = build_groups(n, group_size, max_groups, seed=7)
    again = build_groups(n, group_size, max_groups, seed=7)
    assert np.array_equal(pos, again[0]) and np.array_equal(neg, again[1])
    assert pos.shape == neg.shape == (min(max_groups, max_distinct_groups(n, group_size)), group_size)
    assert pos.min() >= 0 and max(pos.max(), neg.max()) < n
    keys = set()
    for p, q in zip(pos, neg):
        assert not set(p) & set(q) and len(set(p)) == len(set(q)) == group_size
        keys.add(frozenset([tuple(sorted(p)), tuple(sorted(q))]))
    assert len(keys) == len(pos)
    other = build_groups(n, group_size, max_groups, seed=8)
    assert not np.array_equal(pos, other[0])


def test_pairs_cover_all_when_asked():
    pos, neg = build_groups(10, 1, 10_000, seed=0)
    assert len(pos) == 45 == max_distinct_groups(10, 1)


def test_too_few_samples():
    with pytest.raises(CkdError, match="comparative.group_size=3 needs at least 6"):
        build_groups(5, 3, 10, seed=0)


def test_probabilities_become_log_probabilities():
    probs = np.array([[0.5, 0.5, 0.0]], np.float32)
    out = teacher_logits(probs, "probabilities")
    assert np.allclose(out[0, :2], np.log(0.5)) and np.isfinite(out).all()
    assert np.array_equal(teacher_logits(probs, "logits"), probs)


def test_free_pool_inputs_are_capped_to_a_seeded_subset(monkeypatch):
    from ckd import comparative
    from ckd.data import Pool

    pool = Pool(
        ids=np.arange(100, 150),
        x=np.arange(50, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32),
        class_names=("a", "b"),
        is_image=False,
    )
    queried = np.arange(100, 110)
    scores = np.zeros((10, 2), np.float32)
    whole = comparative.comparative_set(queried, scores, pool, "logits", 1, 20, seed=0).unlabelled
    assert len(whole) == 40  # below the cap: every never-queried input, as before
    monkeypatch.setattr(comparative, "MAX_UNLABELLED", 15)
    capped = comparative.comparative_set(queried, scores, pool, "logits", 1, 20, seed=0).unlabelled
    assert len(capped) == 15 and len(np.unique(capped[:, 0])) == 15
    assert set(capped[:, 0].tolist()) <= set(range(10, 50))  # never a queried input
    again = comparative.comparative_set(queried, scores, pool, "logits", 1, 20, seed=0).unlabelled
    assert np.array_equal(capped, again)


# groups of 2 positives + 1 negative, as the paper's code draws them (comparative.negatives)
def test_two_plus_one_groups_are_distinct_and_disjoint_and_cover_all_when_asked():
    pos, neg = build_groups(8, 2, 10_000, seed=0, negatives=1)
    assert pos.shape[1] == 2 and neg.shape[1] == 1
    assert len(pos) == max_distinct_groups(8, 2, 1) == 28 * 6  # C(8,2) positive pairs x 6 negatives, ordered
    assert all(n[0] not in p for p, n in zip(pos, neg))
    assert len({(tuple(p), tuple(n)) for p, n in zip(pos, neg)}) == len(pos)


def test_two_plus_one_needs_three_samples_and_says_so():
    with pytest.raises(CkdError, match="comparative.group_size=2 with comparative.negatives=1 needs at least 3"):
        build_groups(2, 2, 10, seed=0, negatives=1)


def test_two_plus_one_difference_is_the_mean_of_the_positives_minus_the_negative():
    import torch

    from ckd.methods.base import group_difference

    values = torch.tensor([[1.0, 0.0], [3.0, 2.0], [10.0, 1.0], [0.0, 0.0], [4.0, 4.0], [1.0, 1.0]])
    expected = torch.tensor([[2.0 - 10.0, 1.0 - 1.0], [2.0 - 1.0, 2.0 - 1.0]])
    assert torch.equal(group_difference(values, (2, 1)), expected)
    assert torch.equal(group_difference(values[:4], 1), torch.tensor([[-2.0, -2.0], [10.0, 1.0]]))
