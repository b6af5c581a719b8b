"""`sample`: load `data.source`, split pool / test, choose exactly `teacher.budget` pool inputs."""

from __future__ import annotations

from ckd.config import DataConfig
from ckd.data import Pool, Selection, TestSet, load_source, select_for_teacher, split_pool_test
from ckd.errors import CkdError


def sample(data: DataConfig, budget: int, split_seed: int, seed: int) -> tuple[Pool, TestSet, Selection, dict]:
    dataset = load_source(data.source)
    if dataset.y is None:
        raise CkdError(f"{data.source}: the test split needs labels to measure accuracy (array 'y' or 'labels')")
    pool_ids, test_ids = split_pool_test(len(dataset.x), data.test_size, split_seed)
    selected = select_for_teacher(pool_ids, dataset.x[pool_ids], budget, data.selection, seed)
    pool = Pool(
        ids=pool_ids,
        x=dataset.x[pool_ids],
        class_names=dataset.class_names,
        is_image=dataset.is_image,
        labels=dataset.y[pool_ids] if data.use_labels else None,
    )
    test = TestSet(ids=test_ids, x=dataset.x[test_ids], labels=dataset.y[test_ids])
    metrics = {
        "pool_size": int(len(pool_ids)),
        "test_size": int(len(test_ids)),
        "selected": int(len(selected)),
        "labelled": pool.labels is not None,
        "selection": data.selection,
    }
    return pool, test, Selection(ids=selected), metrics
