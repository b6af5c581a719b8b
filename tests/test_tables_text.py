"""Issue 17, tables and text: feature corruption (the tables' augmentation) and TypiClust selection."""

import numpy as np
import pytest
import torch

from ckd.augment import CORRUPT_DROP, corrupt_features, resolve_augment
from ckd.config import section_from_dict
from ckd.data.selection import SELECTIONS, select_for_teacher


def test_corruption_resets_a_fraction_of_features_to_their_mean_and_noises_the_rest_by_their_std():
    generator = torch.Generator().manual_seed(0)
    x = torch.zeros(4000, 2) + torch.tensor([10.0, 1000.0])
    mean, std = torch.tensor([3.0, -7.0]), torch.tensor([1.0, 100.0])
    out = corrupt_features(x, mean, std, 1.0, generator)
    dropped = out == mean
    assert abs(dropped.float().mean().item() - CORRUPT_DROP) < 0.02
    noise = (out - x)[~dropped].reshape(-1)
    kept = (~dropped).nonzero()[:, 1]
    for feature in (0, 1):  # noise in each feature's own units: 0.1 of its std
        spread = noise[kept == feature].std().item() / std[feature].item()
        assert 0.08 < spread < 0.12
    assert torch.equal(corrupt_features(x, mean, std, 0.0, generator), x)  # strength 0: the input unchanged


def test_corrupt_is_an_augmentation_for_any_input_and_auto_stays_none_for_tables():
    assert resolve_augment("corrupt", (16,), False) == ("corrupt", 0)
    assert resolve_augment("auto", (16,), False) == ("none", 0)
    assert section_from_dict("student", {"augment": "corrupt"}).augment == "corrupt"


def blobs(rng, sizes=(300, 200, 150, 100, 60), spread=0.3):
    centres = rng.normal(size=(len(sizes), 5)) * 10
    x = np.concatenate([c + spread * rng.normal(size=(n, 5)) for c, n in zip(centres, sizes)])
    return x.astype(np.float32), np.repeat(np.arange(len(sizes)), sizes)


def test_typiclust_picks_one_typical_input_per_region_where_random_misses_small_ones():
    x, region = blobs(np.random.default_rng(0))
    picks = SELECTIONS.get("typiclust")(x, 10, np.random.default_rng(1))
    assert len(set(picks.tolist())) == 10
    assert set(region[picks]) == set(range(5))  # every region covered, the small ones too
    # typical: near its region's centre, not an outlier (k-centre's weakness)
    centre = np.stack([x[region == r].mean(0) for r in range(5)])
    distance = np.linalg.norm(x[picks] - centre[region[picks]], axis=1)
    typical = np.median(np.linalg.norm(x - centre[region], axis=1))
    assert np.median(distance) < typical


def test_typiclust_is_nested_and_seeded_so_a_raised_budget_reuses_every_paid_answer():
    x, _ = blobs(np.random.default_rng(2))
    ids = np.arange(1000, 1000 + len(x))
    small = select_for_teacher(ids, x, 30, "typiclust", 4)
    large = select_for_teacher(ids, x, 75, "typiclust", 4)
    assert set(small) <= set(large) and len(large) == 75
    assert np.array_equal(large, select_for_teacher(ids, x, 75, "typiclust", 4))


def test_typiclust_is_a_registered_selection():
    assert section_from_dict("data", {"selection": "typiclust"}).selection == "typiclust"
    with pytest.raises(Exception, match="typiclust"):
        section_from_dict("data", {"selection": "typiclus"})
