"""A text source: a CSV or Parquet table whose text is `data.text` (columns joined by a space) and whose
classes are the distinct values of `data.label`, sorted. The `embed` stage reads it (the table source refuses
it), and `sample` reads embed's output (texts, their embeddings and labels in one `.npz`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ckd.data.table import TABLE_SUFFIXES as TEXT_SUFFIXES
from ckd.errors import CkdError, ConfigError


@dataclass(frozen=True)
class TextTable:
    texts: np.ndarray  # [n] str
    y: np.ndarray  # [n] int64, index into class_names
    class_names: tuple[str, ...]


def is_text_source(source: str) -> bool:
    return Path(source).suffix.lower() in TEXT_SUFFIXES


def load_text_table(source: str, text_columns: Any, label_column: str = "label") -> TextTable:
    """Read `source`; each text is its `text_columns` joined by a space (missing cells are empty)."""
    import pandas as pd

    path = Path(source)
    if not text_columns:
        raise ConfigError("data.text", f"must list the text columns of {path}")
    if not path.is_file():
        from ckd.data.download import known_source_hint

        raise CkdError(f"{path}: data.source not found{known_source_hint(path)}")
    try:
        table = (
            pd.read_parquet(path)
            if path.suffix.lower() in (".parquet", ".pq")
            else pd.read_csv(path, dtype=str, keep_default_na=False)
        )
    except Exception as error:
        raise CkdError(f"{path}: not a readable {path.suffix} table ({str(error).splitlines()[0]})") from None
    missing = [c for c in [*text_columns, label_column] if c not in table.columns]
    if missing:
        raise CkdError(
            f"{path}: no column(s) {', '.join(missing)} (data.text / data.label); "
            f"has {', '.join(map(str, table.columns))}"
        )
    if len(table) < 3:
        raise CkdError(f"{path}: needs at least 3 rows, has {len(table)}")
    texts = table[list(text_columns)].fillna("").astype(str).agg(" ".join, axis=1).str.strip()
    labels = table[label_column]
    if labels.isna().any():
        raise CkdError(f"{path}: column {label_column} (data.label) has empty cells")
    labels = labels.astype(str)
    class_names = tuple(sorted(labels.unique(), key=lambda v: (len(v), v) if v.isdigit() else (1 << 30, v)))
    index = {name: k for k, name in enumerate(class_names)}
    return TextTable(texts.to_numpy(dtype=str), labels.map(index).to_numpy(np.int64), class_names)
