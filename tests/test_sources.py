"""Each data source on small real files, and the checks every source shares (one line each)."""

import numpy as np
import pytest

from ckd.config import DataConfig
from ckd.data import load_source, write_arrays
from ckd.errors import CkdError, ConfigError
from tests.helpers.own_data import image_folder, table


def data(**values) -> DataConfig:
    return DataConfig.model_validate(values)


def test_image_folder_grey_pngs_class_names_are_sorted_folders(tmp_path):
    root = image_folder(tmp_path / "images", per_class=5)
    dataset = load_source(str(root), data(source=str(root)))
    assert dataset.x.shape == (10, 1, 8, 8) and dataset.x.dtype == np.float32
    assert dataset.class_names == ("bright", "dark") and dataset.is_image
    assert sorted(np.bincount(dataset.y).tolist()) == [5, 5]
    assert dataset.x.max() > 150  # raw pixel values: the student normalises inside its graph


def test_image_folder_rgb_and_resize(tmp_path):
    root = image_folder(tmp_path / "images", per_class=3, size=12, rgb=True)
    dataset = load_source(str(root), data(source=str(root), image_size=[6, 4]))
    assert dataset.x.shape == (6, 3, 6, 4)


def test_image_folder_refuses_mixed_sizes_and_unreadable_files(tmp_path):
    from PIL import Image

    root = image_folder(tmp_path / "images", per_class=3)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(root / "dark" / "odd.png")
    with pytest.raises(CkdError, match=r"odd.png: size 9x9 differs .* set data.image_size"):
        load_source(str(root), data(source=str(root)))
    assert load_source(str(root), data(source=str(root), image_size=8)).x.shape == (7, 1, 8, 8)
    (root / "dark" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CkdError, match=r"broken.png: not a readable image"):
        load_source(str(root), data(source=str(root), image_size=8))


def test_unlabelled_image_folder_needs_class_names(tmp_path):
    root = image_folder(tmp_path / "images", per_class=3)
    flat = tmp_path / "flat"
    flat.mkdir()
    for n, png in enumerate(sorted(root.rglob("*.png"))):
        png.rename(flat / f"{n}.png")
    with pytest.raises(CkdError, match="data.class_names must name the classes"):
        load_source(str(flat), data(source=str(flat)))
    dataset = load_source(str(flat), data(source=str(flat), class_names=["bright", "dark"]))
    assert dataset.y is None and dataset.class_names == ("bright", "dark") and len(dataset.x) == 6


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_with_string_or_integer_labels(tmp_path, suffix):
    path = table(tmp_path / f"iris{suffix}")
    dataset = load_source(str(path), data(source=str(path)))
    assert dataset.x.shape == (240, 6) and not dataset.is_image
    assert dataset.class_names == ("setosa", "versicolor", "virginica")
    path = table(tmp_path / f"ints{suffix}", string_labels=False)
    dataset = load_source(str(path), data(source=str(path), features=["f3", "f0"]))
    assert dataset.x.shape == (240, 2) and dataset.class_names == ("0", "1", "2")
    named = load_source(str(path), data(source=str(path), class_names=["a", "b", "c"]))
    assert named.class_names == ("a", "b", "c") and np.array_equal(named.y, dataset.y)


def test_table_refusals_name_the_column(tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    path = table(tmp_path / "t.csv")
    with pytest.raises(CkdError, match=r"no label column 'species' \(data.label\)"):
        load_source(str(path), data(source=str(path), label="species"))
    with pytest.raises(CkdError, match=r"no column\(s\) f9 \(data.features\)"):
        load_source(str(path), data(source=str(path), features=["f9"]))
    text = tmp_path / "text.csv"
    pa_csv.write_csv(pa.table({"f0": [1.0, 2.0, 3.0], "note": ["a", "b", "c"], "label": [0, 1, 0]}), text)
    with pytest.raises(CkdError, match=r"column\(s\) note are not numeric; list the numeric feature columns"):
        load_source(str(text), data(source=str(text)))
    unlabelled = table(tmp_path / "u.parquet", label=None)
    with pytest.raises(CkdError, match=r"data.label: null\), data.class_names must name the classes"):
        load_source(str(unlabelled), data(source=str(unlabelled), label=None))
    dataset = load_source(str(unlabelled), data(source=str(unlabelled), label=None, class_names=["x", "y", "z"]))
    assert dataset.y is None and dataset.num_classes == 3


@pytest.mark.parametrize(
    "arrays,words",
    [
        ({"x": np.zeros((20, 4), np.float32), "y": np.full(20, 3)}, "every sample has the same label (3)"),
        (
            {"x": np.zeros((20, 4), np.float32), "y": np.r_[np.zeros(19, np.int64), 10**9]},
            "label 1000000000 implies 1000000001 classes; labels must be 0..9999",
        ),
        (
            {"x": np.zeros((20, 4), np.float32), "y": np.arange(20) % 5, "class_names": np.array(["a", "b"])},
            "label 4 is beyond the 2 class names",
        ),
        ({"x": np.zeros((20, 2, 2, 2, 2), np.float32), "y": np.arange(20) % 2}, "got 5-D (20, 2, 2, 2, 2)"),
        ({"x": np.full((20, 4), np.nan, np.float32), "y": np.arange(20) % 2}, "NaN or infinite"),
    ],
    ids=["one-class", "huge-label", "beyond-class-names", "5-D", "nan"],
)
def test_shared_checks_refuse_in_one_line(tmp_path, arrays, words):
    path = tmp_path / "d.npz"
    write_arrays(path, **arrays)
    with pytest.raises(CkdError) as error:
        load_source(str(path), data(source=str(path)))
    assert words in str(error.value) and "\n" not in str(error.value)


def test_unknown_source_and_missing_file_name_the_parameter(tmp_path):
    with pytest.raises(ConfigError, match=r"data.source: must be digits, a folder of images .* got 'digts'"):
        load_source("digts", DataConfig())
    with pytest.raises(CkdError, match=r"nothere.csv: file not found \(data.source\)"):
        load_source(str(tmp_path / "nothere.csv"), DataConfig())


def test_config_bounds_for_own_data():
    from ckd.config import validate_all

    for values, words in [
        ({"class_names": ["only"]}, "data.class_names: must list 2 to 10000 classes"),
        ({"class_names": ["a", "a"]}, "data.class_names: must not name a class twice"),
        ({"image_size": [0, 8]}, "data.image_size: must be null, a side, or [height, width]"),
        ({"features": []}, "data.features: must be null or a non-empty list of column names"),
    ]:
        with pytest.raises(ConfigError) as error:
            validate_all({"data": values})
        assert str(error.value).startswith(words), str(error.value)


def test_an_unlabelled_table_pool_with_a_labelled_test_table(tmp_path):
    """The test source's label column is data.test_label (here: the pool has none, the test has `species`)."""
    from ckd.stages.sample import sample

    pool = table(tmp_path / "pool.parquet", label=None)
    test = table(tmp_path / "test.csv", seed=1, label="species")
    options = data(
        source=str(pool),
        label=None,
        test_source=str(test),
        test_label="species",
        class_names=["setosa", "versicolor", "virginica"],
    )
    pool_set, test_set, selection, metrics = sample(options, budget=30, split_seed=0, seed=0)
    assert pool_set.labels is None and len(pool_set.ids) == 240 and len(test_set.x) == 240
    assert test_set.x.shape[1] == 6 and set(test_set.labels.tolist()) == {0, 1, 2}
