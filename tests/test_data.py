import numpy as np
import pytest

from ckd.config import DataConfig, section_from_dict
from ckd.data import load_source, select_for_teacher, split_pool_test, write_arrays
from ckd.errors import CkdError, ConfigError


def test_digits_and_split():
    data = load_source("digits", DataConfig())
    assert data.x.shape == (1797, 8, 8) and data.num_classes == 10 and data.is_image
    pool, test = split_pool_test(len(data.x), 500, seed=0)
    assert len(test) == 500 and len(pool) == 1297 and not set(pool) & set(test)
    assert np.array_equal(pool, split_pool_test(len(data.x), 500, seed=0)[0])
    with pytest.raises(ConfigError, match="data.test_size"):
        split_pool_test(10, 9, seed=0)


def test_embedded_digits_match_scikit_learn():
    """The digits are read from scikit-learn's CSV without importing it; they must be load_digits' arrays."""
    from sklearn.datasets import load_digits

    data, reference = load_source("digits", DataConfig()), load_digits()
    assert np.array_equal(data.x, reference.images.astype(np.float32))
    assert np.array_equal(data.y, reference.target)


def test_npz_source_images_labels(tmp_path):
    path = tmp_path / "mine.npz"
    write_arrays(path, images=np.zeros((20, 4, 4), np.uint8), labels=np.arange(20) % 3)
    data = load_source(str(path), DataConfig())
    assert data.x.dtype == np.float32 and data.class_names == ("0", "1", "2") and data.is_image
    write_arrays(tmp_path / "table.npz", x=np.random.rand(20, 5), y=np.arange(20) % 2)
    assert not load_source(str(tmp_path / "table.npz"), DataConfig()).is_image


@pytest.mark.parametrize(
    "arrays,message",
    [
        ({"pixels": np.zeros((5, 2))}, "needs an array named 'x' or 'images'"),
        ({"x": np.zeros((5, 2)), "y": np.zeros(4, int)}, "'y' must be non-negative integers of shape \\[5\\]"),
        ({"x": np.full((5, 2), np.nan), "y": np.arange(5) % 2}, "NaN"),
        ({"x": np.zeros((5, 2))}, "class_names"),
    ],
)
def test_malformed_npz_names_the_file(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    write_arrays(path, **arrays)
    with pytest.raises(CkdError, match=message) as error:
        load_source(str(path), DataConfig())
    assert str(path) in str(error.value)


def test_missing_unreadable_and_unknown_source(tmp_path):
    with pytest.raises(CkdError, match="file not found"):
        load_source(str(tmp_path / "absent.npz"), DataConfig())
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CkdError, match="junk.npz: not a readable .npz"):
        load_source(str(tmp_path / "junk.npz"), DataConfig())
    with pytest.raises(ConfigError, match="data.source: must be digits, a folder of images"):
        load_source("mnist-from-the-internet", DataConfig())
    with pytest.raises(
        ConfigError,
        match=r"data.source: must be digits, a folder of images \(one sub-folder per class\), or a file "
        r"\.csv, \.npz, \.parquet, \.pq \('\.tsv' is not one\), got 'mnist.tsv'",
    ):
        section_from_dict("data", {"source": "mnist.tsv"})
    (tmp_path / "news.csv").write_text("title,label\na,0\nb,1\n")
    with pytest.raises(CkdError, match="read by the embed stage"):  # a text table needs the embed stage first
        load_source(str(tmp_path / "news.csv"), section_from_dict("data", {"source": "x.csv", "text": ["title"]}))


def test_pickled_npz_is_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, x=np.array([{"a": 1}] * 3, dtype=object))
    with pytest.raises(CkdError, match="without pickles"):
        load_source(str(path), DataConfig())


@pytest.mark.parametrize("strategy", ["random", "kcenter"])
def test_selection_exact_budget(strategy):
    pool_ids = np.arange(100, 200)
    x = np.random.default_rng(0).random((100, 6)).astype(np.float32)
    chosen = select_for_teacher(pool_ids, x, 30, strategy, seed=1)
    assert len(chosen) == len(set(chosen)) == 30 and set(chosen) <= set(pool_ids)
    assert np.array_equal(chosen, select_for_teacher(pool_ids, x, 30, strategy, seed=1))
    for bad in (0, 101):
        with pytest.raises(ConfigError, match=r"teacher.budget: must be in 1..100"):
            select_for_teacher(pool_ids, x, bad, strategy, seed=1)


@pytest.mark.parametrize("strategy", ["random", "kcenter"])
def test_selection_is_nested_across_budgets(strategy):
    pool_ids = np.arange(300)
    x = np.random.default_rng(0).random((300, 6)).astype(np.float32)
    small = select_for_teacher(pool_ids, x, 40, strategy, seed=2)
    large = select_for_teacher(pool_ids, x, 90, strategy, seed=2)
    assert set(small) <= set(large)


def test_kcenter_candidates_are_capped_and_picks_stay_nested(monkeypatch):
    """Above the cap, k-centre picks among a seeded subset of the pool that does not depend on N."""
    from ckd.data import selection

    pool_ids = np.arange(1000, 1300)
    x = np.random.default_rng(0).random((300, 6)).astype(np.float32)
    uncapped = select_for_teacher(pool_ids, x, 40, "kcenter", seed=2)
    monkeypatch.setattr(selection, "KCENTER_MAX_CANDIDATES", 100)
    small = select_for_teacher(pool_ids, x, 40, "kcenter", seed=2)
    large = select_for_teacher(pool_ids, x, 90, "kcenter", seed=2)
    assert len(set(small)) == 40 and set(small) <= set(large) <= set(pool_ids)
    assert not np.array_equal(small, uncapped)  # the cap changed what was searched
    subset = np.sort(np.random.default_rng(2).permutation(300)[:100]) + 1000
    assert set(large) <= set(subset)
    assert len(select_for_teacher(pool_ids, x, 150, "kcenter", seed=2)) == 150  # N above the cap: N candidates
