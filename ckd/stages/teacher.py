"""`teacher`: the embedded default's stand-in, trained on the whole labelled pool (not a teacher call)."""

from __future__ import annotations

import torch

from ckd.config import DataConfig, StandinConfig
from ckd.data import load_source, split_pool_test
from ckd.errors import CkdError
from ckd.teachers.standin import StandinTeacher, train_standin


def teacher(
    data: DataConfig, standin: StandinConfig, split_seed: int, progress: bool = True
) -> tuple[StandinTeacher, dict]:
    dataset = load_source(data.source)
    if dataset.y is None:
        raise CkdError(f"{data.source}: the stand-in teacher needs labels; set teacher.model to your own ONNX teacher")
    pool_ids, test_ids = split_pool_test(len(dataset.x), data.test_size, split_seed)
    model, input_shape = train_standin(
        dataset.x[pool_ids], dataset.y[pool_ids], dataset.num_classes, dataset.is_image, standin, split_seed, progress
    )
    with torch.no_grad():
        x_test = torch.as_tensor(dataset.x[test_ids]).reshape(len(test_ids), *input_shape)
        test_acc = float((model(x_test).argmax(1).numpy() == dataset.y[test_ids]).mean())
    # Measured in-process on the PyTorch model: no teacher call is made or counted here.
    metrics = {"standin_test_accuracy": test_acc, "pool_size": int(len(pool_ids)), "input_shape": list(input_shape)}
    return StandinTeacher(model, input_shape, dataset.class_names), metrics
