"""A CSV or Parquet table (pyarrow): one row per sample.

    data:
      source: data/measurements.csv   # or .parquet / .pq
      label: species                  # the label column (string or integer labels); null: no labels
      features: [length, width]       # optional: the feature columns (default: every other numeric column)

Classes are the label column's distinct values in sorted order (numbers by value), or `data.class_names`
when given (integer labels then index it). Without labels (`data.label: null`), `data.class_names` names the
classes the teacher answers. A text column among the features is refused: text tables are read by the
embed stage when `data.text` lists their text columns (ckd/data/text.py, examples/ag_news).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ckd.data.sources import SOURCES, Dataset
from ckd.errors import CkdError, ClassNamesNeeded

if TYPE_CHECKING:
    import pyarrow as pa

    from ckd.config import DataConfig

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: Path) -> pa.Table:
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    try:
        table = pa_csv.read_csv(path) if path.suffix.lower() == ".csv" else pq.read_table(path)
    except Exception as error:  # pyarrow's own errors: a malformed file, a wrong format
        raise CkdError(f"{path}: not a readable {path.suffix} table ({str(error).splitlines()[0][:160]})") from None
    names = table.column_names
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # pyarrow reads them; selecting one by name would then fail (KeyError) or pick one silently
        raise CkdError(f"{path}: column name(s) {', '.join(map(repr, twice[:5]))} appear more than once; rename them")
    return table


def _numeric(column: pa.ChunkedArray) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_integer(column.type) or pt.is_floating(column.type) or pt.is_boolean(column.type))


@SOURCES.register(".csv")
@SOURCES.register(".parquet")
@SOURCES.register(".pq")
def load_table(source: str, options: DataConfig) -> Dataset:
    path = Path(source)
    if options.text is not None:
        raise CkdError(
            f"{path}: a text table (data.text) is read by the embed stage; give the sample stage the embed "
            "stage's output (--embedded, as dvc.yaml does)"
        )
    table = read_table(path)
    columns = list(table.column_names)
    label = options.label
    if label is not None and label not in columns:
        raise CkdError(
            f"{path}: no label column {label!r} (data.label); has {', '.join(columns[:20])}; "
            "set data.label: null for a table without labels"
        )
    if len(table) < 2:
        raise CkdError(f"{path}: needs at least 2 rows, has {len(table)}")
    if options.features is not None:
        if label in options.features:
            raise CkdError(
                f"{path}: data.features names the label column {label!r} (data.label); the label must not be an input"
            )
        missing = [c for c in options.features if c not in columns]
        if missing:
            raise CkdError(f"{path}: no column(s) {', '.join(missing)} (data.features); has {', '.join(columns[:20])}")
        features = list(options.features)
        text = [c for c in features if not _numeric(table[c])]
        if text:
            raise CkdError(
                f"{path}: data.features column(s) {', '.join(text)} are not numeric "
                f"({table[text[0]].type}); a text column is read with data.text (examples/ag_news)"
            )
    else:
        features = [c for c in columns if c != label]
        text = [c for c in features if not _numeric(table[c])]
        if text:
            raise CkdError(
                f"{path}: column(s) {', '.join(text[:5])} are not numeric; list the numeric feature columns in "
                "data.features, or use data.text for a text source (examples/ag_news)"
            )
    if not features:
        raise CkdError(f"{path}: no feature column besides the label {label!r}")
    blanks = [c for c in features if table[c].null_count]
    if blanks:
        raise CkdError(f"{path}: feature column(s) {', '.join(blanks[:5])} have empty cells")
    x = np.stack([table[c].to_numpy(zero_copy_only=False).astype(np.float32) for c in features], axis=1)
    if label is None:
        if options.class_names is None:
            raise ClassNamesNeeded(f"{path}: without labels (data.label: null), data.class_names must name the classes")
        return Dataset(x, None, tuple(options.class_names), is_image=False)
    column = table[label]
    if column.null_count:
        raise CkdError(f"{path}: label column {label!r} (data.label) has {column.null_count} empty cells")
    values = column.to_numpy(zero_copy_only=False)
    numeric = _numeric(column)
    if numeric and not np.issubdtype(values.dtype, np.integer) and not np.all(np.mod(values, 1) == 0):
        raise CkdError(f"{path}: label column {label!r} holds fractional numbers; labels are classes")
    values = values.astype(np.int64 if numeric else str)
    if numeric and options.class_names is not None:  # integer labels index data.class_names
        names = tuple(options.class_names)
        if values.min() < 0 or values.max() >= len(names):
            bad = int(values.min() if values.min() < 0 else values.max())
            raise CkdError(
                f"{path}: label {bad} in column {label!r} is beyond data.class_names; integer labels must be "
                f"0..{len(names) - 1} (indices into data.class_names)"
            )
        return Dataset(x, values, names, is_image=False)
    distinct = np.unique(values)  # the classes in sorted order (numbers by value)
    y = np.searchsorted(distinct, values).astype(np.int64)
    return Dataset(x, y, tuple(str(v) for v in distinct), is_image=False)
