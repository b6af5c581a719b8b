"""Arrays on disk: `.npz` without pickles, written atomically."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, cast

import numpy as np

from ckd.errors import CkdError


@contextmanager
def replacing(path: Path, suffix: str = ".tmp", readable: bool = False) -> Iterator[tuple[int, Path]]:
    """A temporary file beside `path` (its folder made): renamed onto `path` when the block completes, removed
    when it raises. `readable`: with the mode of any new file (mkstemp makes it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        yield fd, Path(tmp)
        if readable:
            umask = os.umask(0)
            os.umask(umask)
            Path(tmp).chmod(0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_arrays(path: str | Path, **arrays: np.ndarray) -> None:
    """Write `arrays` to `path` atomically (temp file, fsync, rename), so a crash leaves no torn file."""
    path = Path(path)
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"{name}: object arrays would need pickles")
    with replacing(path) as (fd, _), os.fdopen(fd, "wb") as handle:
        named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}  # Any: savez's stubs type **kwds oddly
        np.savez(handle, **named)
        handle.flush()
        os.fsync(handle.fileno())
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_arrays(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Read an `.npz` written by `write_arrays` (never with pickles); name the file on any failure."""
    path = Path(path)
    if not path.is_file():
        raise CkdError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:  # zipfile, ValueError for pickled content, OSError...
        raise CkdError(f"{path}: not a readable .npz file without pickles ({error})") from None
    missing = [name for name in required if name not in arrays]
    if missing:
        raise CkdError(f"{path}: missing array(s) {', '.join(missing)}; has {', '.join(sorted(arrays)) or 'none'}")
    return arrays


def input_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of raw inputs; a constant feature (an image border) gets the global std
    instead of 0, so it is centred and never divided by zero."""
    x = np.asarray(x, np.float64)
    std = x.std(axis=0)
    floor = max(float(x.std()), 1e-6)
    return x.mean(axis=0).astype(np.float32), np.where(std < 1e-3 * floor, floor, std).astype(np.float32)


class NpzArtifact:
    """A dataclass of arrays stored as one `.npz`: the field names are the array names, spelled once.
    A field defaulting to None is optional (absent from the file when None); a file without a required one
    is refused in one line naming it. Subclasses turn the arrays read back into their types in `__post_init__`."""

    path: str  # set by `load` (the file it came from, for messages); not a field of the subclasses: never saved

    def save(self, path: str | Path) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(cast(Any, self))}
        write_arrays(path, **{name: np.asarray(value) for name, value in values.items() if value is not None})

    @classmethod
    def load(cls, path: str | Path) -> Self:
        fields = dataclasses.fields(cast(Any, cls))
        required = tuple(f.name for f in fields if f.default is dataclasses.MISSING)
        arrays = read_arrays(path, required=required)
        try:
            artifact = cls(**{f.name: arrays[f.name] for f in fields if f.name in arrays})
        except (TypeError, ValueError) as error:
            raise CkdError(f"{path}: not a {cls.__name__} ({error})") from None
        artifact.path = str(path)  # for messages that name the file (not a field: never saved)
        return artifact
