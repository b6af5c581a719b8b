"""The embedded default's stand-in for an expensive teacher: a CNN (or a wide MLP for tables) trained
on the whole labelled pool. It is the only code that sees all pool labels, and training it is not a
teacher call. It is exported to ONNX with the normalisation inside, taking raw inputs [B, 1, H, W]
for images, so the query stage treats it as any black-box ONNX teacher."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ckd.export import export_onnx, read_metadata
from ckd.students.base import Normalize
from ckd.teachers.base import StandinConfig

STANDIN_MARK = "ckd_standin_teacher"  # ONNX metadata key: `validate` evaluates only a stand-in (free) teacher
STANDIN_OPSET = 17


@dataclass
class StandinTeacher:
    """The trained stand-in, saved as the ONNX teacher the `query` stage asks like any black box."""

    model: nn.Module
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]

    def save(self, path: str | Path) -> None:
        metadata = {STANDIN_MARK: "true", "class_names": list(self.class_names)}
        export_onnx(self.model, self.input_shape, path, opset=STANDIN_OPSET, metadata=metadata)


def is_standin(path: str | Path) -> bool:
    return Path(path).is_file() and read_metadata(path).get(STANDIN_MARK) == "true"


class StandinCNN(nn.Module):
    """Conv3x3(c1) -> ReLU -> Conv3x3(c2) -> ReLU -> MaxPool2 -> Linear(hidden) -> ReLU -> Linear(C)."""

    def __init__(self, image_shape: tuple[int, ...], num_classes: int, mean: float, std: float, config: StandinConfig):
        super().__init__()
        self.normalize = Normalize(np.asarray(mean, np.float32), np.asarray(std, np.float32))
        c, h, w = image_shape
        channels, hidden = config.channels, config.hidden
        self.features = nn.Sequential(
            nn.Conv2d(c, channels[0], 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels[0], channels[1], 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels[1] * (h // 2) * (w // 2), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize(x)))


class StandinMLP(nn.Module):
    def __init__(self, features: int, num_classes: int, mean: np.ndarray, std: np.ndarray, config: StandinConfig):
        super().__init__()
        self.normalize = Normalize(mean, std)
        hidden = config.hidden
        self.body = nn.Sequential(
            nn.Linear(features, 2 * hidden),
            nn.ReLU(),
            nn.Linear(2 * hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))


def train_standin(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    is_image: bool,
    config: StandinConfig,
    seed: int,
    progress: bool = True,
) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    input_shape = (1, *x.shape[1:]) if is_image and x.ndim == 3 else tuple(x.shape[1:])  # [H, W] images: one channel
    inputs = torch.as_tensor(x, dtype=torch.float32).reshape(len(x), *input_shape)
    targets = torch.as_tensor(y)
    if is_image:
        model = StandinCNN(input_shape, num_classes, float(x.mean()), float(x.std()) or 1.0, config)
    else:
        std = x.std(0)
        model = StandinMLP(int(np.prod(input_shape)), num_classes, x.mean(0), np.where(std > 0, std, 1.0), config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    batches = math.ceil(len(x) / config.batch_size)
    for _ in tqdm(range(config.epochs), desc="stand-in teacher", unit="epoch", disable=not progress):
        order = torch.randperm(len(x), generator=generator)
        for b in range(batches):
            rows = order[b * config.batch_size : (b + 1) * config.batch_size]
            loss = nn.functional.cross_entropy(model(inputs[rows]), targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval(), input_shape
