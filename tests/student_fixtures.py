"""A small student trained on the embedded digits in about a second, exported the way `export` does it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ckd.config import DataConfig
from ckd.data import load_source, split_pool_test
from ckd.data.arrays import input_statistics
from ckd.export import export_onnx
from ckd.serving import add_probabilities
from ckd.students import build_student


def digits_split():
    dataset = load_source("digits", DataConfig())
    pool_ids, test_ids = split_pool_test(len(dataset.x), 500, 0)
    return dataset, pool_ids, test_ids


def trained_student(arch: str, steps: int = 150, seed: int = 0):
    """(model, dataset, pool_ids, test_ids): cross-entropy on the digits pool, full batch."""
    dataset, pool_ids, test_ids = digits_split()
    torch.manual_seed(seed)
    x, y = torch.as_tensor(dataset.x[pool_ids]), torch.as_tensor(dataset.y[pool_ids])
    mean, std = input_statistics(dataset.x[pool_ids])
    model = build_student(
        arch,
        dataset.sample_shape,
        dataset.num_classes,
        mean,
        std,
        {"hidden": [32]} if arch == "mlp" else {"channels": [8, 16]},
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    return model.eval(), dataset, pool_ids, test_ids


def exported_student(arch: str, path: Path, probabilities: bool = True):
    model, dataset, pool_ids, test_ids = trained_student(arch)
    export_onnx(model, dataset.sample_shape, path, 17, {"class_names": list(dataset.class_names)})
    if probabilities:
        add_probabilities(path)
    return model, dataset, pool_ids, test_ids


def test_accuracy_of(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())
