"""Data sources, registered by name (`digits`, scikit-learn's, the embedded default) or by file suffix
(`.npz`, a user's arrays): `data.source` is a registered name or a path ending in a registered suffix.
A new source is a module with `@SOURCES.register("name" or ".suffix")` and one import line in
`ckd/data/__init__.py`."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ckd.data.arrays import read_arrays
from ckd.errors import CkdError, ConfigError
from ckd.registry import Registry


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
    """The registry key of `data.source`: a registered name, else the file's suffix."""
    return source if source in SOURCES else Path(source).suffix


def check_source(source: str) -> str:
    if source_key(source) not in SOURCES:
        raise ValueError(f"must be a registered data source or a path ending in one: {', '.join(SOURCES.names())}")
    return source


def load_source(source: str) -> Dataset:
    try:
        check_source(source)
    except ValueError as error:
        raise ConfigError("data.source", f"{error}, got {source!r}") from None
    return SOURCES.get(source_key(source))(source)


@SOURCES.register("digits")
def load_digits(source: str) -> Dataset:
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
def load_npz(source: str) -> Dataset:
    """An `.npz` holding `x` or `images`, and `y` or `labels` (optional), `class_names` (optional)."""
    path = Path(source)
    arrays = read_arrays(path)
    x_key = "x" if "x" in arrays else "images" if "images" in arrays else None
    if x_key is None:
        raise CkdError(f"{path}: needs an array named 'x' or 'images'; has {', '.join(sorted(arrays))}")
    x = arrays[x_key]
    if x.ndim < 2 or x.shape[0] < 2 or not np.issubdtype(x.dtype, np.number):
        raise CkdError(f"{path}: '{x_key}' must be numeric with shape [samples, ...], got {x.dtype} {x.shape}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise CkdError(f"{path}: '{x_key}' holds NaN or infinite values")
    y_key = "y" if "y" in arrays else "labels" if "labels" in arrays else None
    y = None
    if y_key is not None:
        y = arrays[y_key]
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise CkdError(
                f"{path}: '{y_key}' must be non-negative integers of shape [{x.shape[0]}], got {y.dtype} {y.shape}"
            )
        y = y.astype(np.int64)
    if "class_names" in arrays:
        class_names = tuple(str(c) for c in arrays["class_names"])
    elif y is not None:
        class_names = tuple(str(c) for c in range(int(y.max()) + 1))
    else:
        raise CkdError(f"{path}: without labels, an array 'class_names' must give the classes")
    texts = arrays.get("text")
    if texts is not None and (texts.dtype.kind not in "US" or texts.shape != (x.shape[0],)):
        raise CkdError(f"{path}: 'text' must hold one string per sample, got {texts.dtype} {texts.shape}")
    # Images: [n, H, W] or [n, C, H, W]; tables: [n, features].
    return Dataset(x, y, class_names, is_image=x.ndim >= 3, texts=texts)
