"""Small real files of each kind a user brings: a folder of PNGs, CSV and Parquet tables (tests only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def blobs(n: int = 240, features: int = 6, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs: any sensible teacher and student learn them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    return (centres[y] + rng.normal(size=(n, features))).astype(np.float32), y.astype(np.int64)


def image_folder(root: Path, per_class: int = 30, size: int = 8, rgb: bool = False, seed: int = 0) -> Path:
    """`root/<class>/<n>.png`: class `bright` is light on the left, `dark` light on the right, plus noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(("bright", "dark")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            picture = rng.integers(0, 60, size=(size, size)).astype(np.uint8)
            half = slice(0, size // 2) if k == 0 else slice(size // 2, size)
            picture[:, half] += 150
            if rgb:
                picture = np.stack([picture, picture // 2, 255 - picture], axis=-1)
            Image.fromarray(picture).save(root / name / f"{n:03d}.png")
    return root


def table(path: Path, n: int = 240, seed: int = 0, string_labels: bool = True, label: str | None = "label") -> Path:
    """A CSV or Parquet table (by suffix) of blob features `f0..f5` and a label column."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    x, y = blobs(n, seed=seed)
    columns = {f"f{j}": x[:, j] for j in range(x.shape[1])}
    if label is not None:
        names = np.asarray(["setosa", "versicolor", "virginica"])
        columns[label] = names[y] if string_labels else y
    frame = pa.table(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        pa_csv.write_csv(frame, path)
    else:
        pq.write_table(frame, path)
    return path
