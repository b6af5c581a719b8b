"""`sample`: load `data.source`, make the pool and the test split, choose `data.selection_size` pool inputs
(null: `teacher.budget`, the store's cap) for the teacher.

The test split is `data.test_source` when given (the whole source is then the pool), else a seeded split
of a labelled source (`data.test_size`). An unlabelled source without a test source has an empty test
split: `validate` then measures agreement with the teacher on the held-out part of the queried samples.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np

from ckd.config import DataConfig, Params
from ckd.data import Dataset, Pool, Selection, TestSet, load_source, select_for_teacher, split_pool_test
from ckd.errors import CkdError, ClassNamesNeeded, ConfigError
from ckd.preflight import check_student_for
from ckd.stages._entry import parser, run
from ckd.teachers.base import classes_for_unlabelled

log = logging.getLogger(__name__)


def sample(
    data: DataConfig, budget: int, split_seed: int, seed: int, embedded: str | None = None
) -> tuple[Pool, TestSet, Selection, dict[str, Any]]:
    """`embedded`: the embed stage's output, which a text source (`data.text`) is read from: its texts
    travel with the pool and the test split (the teacher reads them), their embeddings as `x`."""
    if data.text is not None and embedded is None:
        raise CkdError("data.text: a text source needs the embed stage's output (--embedded); see examples/ag_news")
    dataset = load_source(embedded or data.source, data)
    test_data = dataset if data.test_source is None else _test_source(data, dataset)
    if data.test_source is not None:
        pool_ids, test_ids = np.arange(len(dataset.x)), np.arange(len(test_data.x))
    elif dataset.y is None:
        pool_ids, test_ids = np.arange(len(dataset.x)), np.arange(0)
        log.info(
            "%s has no labels and data.test_source is not set: validate reports teacher_agreement on the held-out "
            "part of the queried samples, not test accuracy",
            data.source,
        )
    else:
        pool_ids, test_ids = split_pool_test(len(dataset.x), data.test_size, split_seed)
    size = budget if data.selection_size is None else data.selection_size
    if size > len(pool_ids):
        allowed = f"must be in 1..{len(pool_ids)} (the pool size), got {size}"
        if data.selection_size is not None:
            raise ConfigError("data.selection_size", allowed)
        raise ConfigError(
            "teacher.budget",
            f"{allowed} (the selection's size while data.selection_size is null); set data.selection_size to at "
            f"most {len(pool_ids)} and the budget may stay",
        )
    selected = select_for_teacher(pool_ids, dataset.x[pool_ids], size, data.selection, seed)
    pool = Pool(
        ids=pool_ids,
        x=dataset.x[pool_ids],
        class_names=dataset.class_names,
        is_image=dataset.is_image,
        labels=dataset.y[pool_ids] if data.use_labels and dataset.y is not None else None,
        text=None if dataset.texts is None else dataset.texts[pool_ids],
    )
    test = TestSet(
        ids=test_ids,
        x=test_data.x[test_ids],
        labels=test_data.y[test_ids] if test_data.y is not None else np.zeros(0, np.int64),
        text=None if test_data.texts is None else test_data.texts[test_ids],
    )
    metrics = {
        "pool_size": int(len(pool_ids)),
        "test_size": int(len(test_ids)),
        "selected": int(len(selected)),
        "labelled": pool.labels is not None,
        "selection": data.selection,
        "selection_size": int(len(selected)),
    }
    return pool, test, Selection(ids=selected), metrics


def _test_source(data: DataConfig, pool: Dataset) -> Dataset:
    """`data.test_source`, read with the pool's options; its classes must be the pool's (by name)."""
    assert data.test_source is not None
    label = data.test_label or data.label or "label"
    options = data.model_copy(update={"class_names": data.class_names or pool.class_names, "label": label})
    test = load_source(data.test_source, options, parameter="data.test_source")
    if test.y is None:
        raise CkdError(f"{data.test_source}: data.test_source must have labels (it measures accuracy)")
    if test.sample_shape != pool.sample_shape:
        raise CkdError(
            f"{data.test_source}: inputs of shape {test.sample_shape}, data.source's are {pool.sample_shape} "
            "(data.test_source must be the same kind of data)"
        )
    if test.class_names != pool.class_names:
        raise CkdError(
            f"{data.test_source}: classes {', '.join(test.class_names[:5])} differ from data.source's "
            f"{', '.join(pool.class_names[:5])}"
        )
    return test


def main(argv: list[str] | None = None) -> None:
    p = parser("sample", __doc__)
    p.add_argument("--pool", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--selected", required=True)
    p.add_argument("--embedded", default=None, help="the embed stage's output (read for a text source only)")

    def body(args: argparse.Namespace, params: Params) -> dict[str, Any]:
        embedded = args.embedded if params.data.text is not None else None

        def split(data: DataConfig) -> tuple[Pool, TestSet, Selection, dict[str, Any]]:
            return sample(data, params.teacher.budget, params.split_seed, params.seed, embedded)

        try:
            pool, test, selection, metrics = split(params.data)
        except ClassNamesNeeded as missing:  # no labels, no data.class_names: the teacher's declared classes
            names = classes_for_unlabelled(params.teacher, missing)
            pool, test, selection, metrics = split(params.data.model_copy(update={"class_names": names}))
        selection.checked_student = check_student_for(params.student, pool)  # train's own checks, before paying
        pool.save(args.pool)
        test.save(args.test)
        selection.save(args.selected)
        return metrics

    run("sample", p, body, argv)


if __name__ == "__main__":
    main()
