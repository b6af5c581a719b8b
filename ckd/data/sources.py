"""Data sources: `data.source` (and `data.test_source`) is a registered name (`digits`, the embedded
default), a folder of images (`folder`, one sub-folder per class) or a file with a registered suffix
(`.npz`, `.csv`, `.parquet`, `.pq`). A new source is a module with `@SOURCES.register("name" or ".suffix")`
and one import line in `ckd/data/__init__.py`. A loader `(source, options: DataConfig) -> Dataset` only
reads its format; `load_source` then applies the checks every source shares.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ckd.data.arrays import read_arrays
from ckd.errors import CkdError, ClassNamesNeeded, ConfigError
from ckd.registry import Registry

if TYPE_CHECKING:
    from ckd.config import DataConfig

MAX_CLASSES = 10_000  # a one-hot target [N, C] and the student's last layer grow with C
FOLDER = "folder"  # the registry key of a directory source


@dataclass(frozen=True)
class Dataset:
    """Raw inputs `x` [n, *sample_shape] float32, labels `y` [n] int64 (or None), class names."""

    x: np.ndarray
    y: np.ndarray | None
    class_names: tuple[str, ...]
    is_image: bool
    texts: np.ndarray | None = None  # [n] str: the raw texts when `x` holds their embeddings

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


SOURCES: Registry[Dataset] = Registry("data source", "data.source")


def source_key(source: str) -> str:
    """The registry key of `data.source`: a registered name, a folder, else the file's suffix."""
    if source in SOURCES:
        return source
    suffix = Path(source).suffix.lower()
    if suffix in SOURCES:
        return suffix
    return FOLDER if Path(source).is_dir() else suffix


def check_source(source: str) -> str:
    if source_key(source) not in SOURCES:
        names = ", ".join(n for n in SOURCES.names() if not n.startswith(".") and n != FOLDER)
        suffixes = ", ".join(n for n in SOURCES.names() if n.startswith("."))
        suffix = Path(source).suffix
        raise ValueError(
            f"must be {names}, a folder of images (one sub-folder per class), or a file {suffixes} "
            f"({f'{suffix!r} is not one' if suffix else 'no such folder'})"
        )
    return source


def load_source(source: str, options: DataConfig, parameter: str = "data.source") -> Dataset:
    """Read `source` with its registered loader, then the checks every source shares (one line each).
    `options`: the `data` section (a table's columns, an image folder's size, the class names)."""
    try:
        check_source(source)
    except ValueError as error:
        raise ConfigError(parameter, f"{error}, got {source!r}") from None
    key = source_key(source)
    if key.startswith(".") and not Path(source).is_file():
        from ckd.data.download import known_source_hint

        raise CkdError(f"{source}: file not found ({parameter}){known_source_hint(source)}")
    return checked(SOURCES.get(key)(source, options), source, options.class_names)


def _some(names: tuple[str, ...]) -> str:
    """The first five names, for a message."""
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _check_top_label(where: object, top: int) -> None:
    if top >= MAX_CLASSES:
        raise CkdError(
            f"{where}: label {top} implies {top + 1} classes; labels must be 0..{MAX_CLASSES - 1} "
            "(class indices; name the classes with data.class_names)"
        )


def checked(dataset: Dataset, where: str, class_names: tuple[str, ...] | None = None) -> Dataset:
    """The shared checks: inputs [n, features], [n, H, W] or [n, C, H, W], finite; 2..MAX_CLASSES classes;
    labels within the classes (`data.class_names` names them when given)."""
    x, y = dataset.x, dataset.y
    if not 2 <= x.ndim <= 4:
        raise CkdError(
            f"{where}: inputs must be [samples, features], [samples, H, W] or [samples, C, H, W], "
            f"got {x.ndim}-D {tuple(x.shape)}"
        )
    if len(x) < 2 or 0 in x.shape:
        raise CkdError(f"{where}: needs at least 2 samples of at least 1 value, got shape {tuple(x.shape)}")
    if not np.isfinite(x).all():
        raise CkdError(f"{where}: inputs hold NaN or infinite values")
    if class_names is not None and y is not None and dataset.class_names != class_names:
        dataset = _rename(dataset, class_names, where)  # integer labels index them; named ones must be among them
    y, names = dataset.y, dataset.class_names
    if len(names) > MAX_CLASSES:
        raise CkdError(f"{where}: {len(names)} classes; at most {MAX_CLASSES} are allowed")
    if y is not None:
        if y.shape != (len(x),):
            raise CkdError(f"{where}: {len(y)} labels for {len(x)} samples")
        top = int(y.max())
        _check_top_label(where, top)
        if top >= len(names):
            raise CkdError(
                f"{where}: label {top} is beyond the {len(names)} class names ({_some(names)}); "
                f"labels must be 0..{len(names) - 1}"
            )
        present = np.unique(y)
        if len(present) < 2:
            raise CkdError(
                f"{where}: every sample has the same label ({names[int(present[0])]}); "
                "a classifier needs at least 2 classes"
            )
    if len(names) < 2:
        raise CkdError(f"{where}: {len(names)} class name(s); a classifier needs at least 2 classes")
    return dataset


def _rename(dataset: Dataset, class_names: tuple[str, ...], where: str) -> Dataset:
    """Map the loader's labels onto `data.class_names`: by name where the loader read names, else by index."""
    y = dataset.y
    assert y is not None
    own = dataset.class_names
    if own == tuple(str(k) for k in range(len(own))):  # integer labels: indices into data.class_names
        return replace(dataset, class_names=class_names)
    index = {name: k for k, name in enumerate(class_names)}
    unknown = sorted({own[int(k)] for k in np.unique(y)} - set(index))
    if unknown:
        raise CkdError(f"{where}: labels {', '.join(unknown[:5])} are not in data.class_names ({_some(class_names)})")
    remap = np.asarray([index.get(name, -1) for name in own], dtype=np.int64)
    return replace(dataset, y=remap[y], class_names=class_names)


@SOURCES.register("digits")
def load_digits(source: str, options: DataConfig) -> Dataset:
    """scikit-learn's 8x8 digits: 1797 images [1797, 8, 8], values 0..16, read from the CSV that sklearn's
    `load_digits` reads, without importing scikit-learn (1.3 s of start-up for one small file)."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    locations = spec.submodule_search_locations if spec else None
    csv = Path(locations[0], "datasets", "data", "digits.csv.gz") if locations else None
    if csv is None or not csv.is_file():
        from sklearn.datasets import load_digits as sklearn_digits

        digits = sklearn_digits()
        x, y = digits.images.astype(np.float32), digits.target.astype(np.int64)
    else:
        table = np.loadtxt(csv, delimiter=",")
        x, y = table[:, :-1].reshape(-1, 8, 8).astype(np.float32), table[:, -1].astype(np.int64)
    return Dataset(x, y, tuple(str(c) for c in range(10)), is_image=True)


@SOURCES.register(".npz")
def load_npz(source: str, options: DataConfig) -> Dataset:
    """An `.npz` holding `x` or `images`, and `y` or `labels` (optional), `class_names` (optional)."""
    path = Path(source)
    arrays = read_arrays(path)
    x_key = next((key for key in ("x", "images") if key in arrays), None)
    if x_key is None:
        raise CkdError(f"{path}: needs an array named 'x' or 'images'; has {', '.join(sorted(arrays))}")
    x = arrays[x_key]
    if x.ndim < 2 or x.shape[0] < 2 or not np.issubdtype(x.dtype, np.number):
        raise CkdError(f"{path}: '{x_key}' must be numeric with shape [samples, ...], got {x.dtype} {x.shape}")
    x = x.astype(np.float32)
    y_key = next((key for key in ("y", "labels") if key in arrays), None)
    y = None if y_key is None else arrays[y_key]
    if y is not None:
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise CkdError(
                f"{path}: '{y_key}' must be non-negative integers of shape [{x.shape[0]}], got {y.dtype} {y.shape}"
            )
        y = y.astype(np.int64)
    if "class_names" in arrays:
        class_names = tuple(str(c) for c in arrays["class_names"].reshape(-1))
    elif options.class_names is not None:
        class_names = options.class_names
    elif y is not None:
        _check_top_label(path, int(y.max()))
        class_names = tuple(str(c) for c in range(int(y.max()) + 1))
    else:
        raise ClassNamesNeeded(
            f"{path}: without labels, data.class_names (or an array 'class_names') must name the classes"
        )
    texts = arrays.get("text")
    if texts is not None and (texts.dtype.kind not in "US" or texts.shape != (x.shape[0],)):
        raise CkdError(f"{path}: 'text' must hold one string per sample, got {texts.dtype} {texts.shape}")
    # Images: [n, H, W] or [n, C, H, W]; tables: [n, features].
    return Dataset(x, y, class_names, is_image=x.ndim >= 3, texts=texts)
