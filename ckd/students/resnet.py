"""A small ResNet for natural images (He et al. 2016), as a teacher for CIFAR-10 or as a student.

    normalise -> Conv3x3(c0)-BN-ReLU -> per stage i: [BasicBlock(c_i, stride 2 after the first)] x blocks
              -> global average pool -> Linear(classes)
    BasicBlock: y = ReLU(BN(Conv3x3(ReLU(BN(Conv3x3(x))))) + shortcut(x)), shortcut = 1x1 conv + BN when the
    shape changes, else identity.

`train_classifier` trains one on a whole labelled uint8 image set on the device: bench/cifar10's teacher (about
a minute on one GPU; it reads every pool label, not a teacher call), exported to ONNX like the stand-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ckd.augment import random_shift
from ckd.errors import ConfigError
from ckd.students.base import Normalize, image_shape


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetStudent(nn.Module):
    """`channels`: one width per stage (each stage after the first halves the resolution); `blocks`: basic blocks
    per stage."""

    def __init__(
        self,
        sample_shape: Sequence[int],
        num_classes: int,
        normalize: Normalize,
        channels: Sequence[int] = (32, 64, 128),
        blocks: int = 1,
    ) -> None:
        super().__init__()
        self.image_shape = image_shape(sample_shape, "resnet")
        if not channels or blocks < 1:
            raise ConfigError("student.arch_args", f"'resnet' needs channels and blocks >= 1, got {channels}, {blocks}")
        self.normalize = normalize
        self.stem = nn.Sequential(
            nn.Conv2d(self.image_shape[0], channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()
        )
        layers: list[nn.Module] = []
        c_in = channels[0]
        for stage, c_out in enumerate(channels):
            for block in range(blocks):
                layers.append(BasicBlock(c_in, c_out, 2 if stage > 0 and block == 0 else 1))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x).reshape(-1, *self.image_shape)
        return self.head(self.layers(self.stem(x)).mean(dim=(2, 3)))


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_size: int = 512,
    lr: float = 0.2,
    weight_decay: float = 5e-4,
    crop: int = 4,
    seed: int = 0,
    precision: str = "bf16",
    log: Callable[[str], None] | None = None,
) -> nn.Module:
    """Supervised training on a whole image set on the model's device (`x` uint8 [N, C, H, W], `y` int64): each
    step gathers a batch by index, flips and crops it (zero padding `crop` px) and takes one SGD step (momentum
    0.9, Nesterov, label smoothing 0.1, bf16 autocast) under a one-cycle schedule (linear warm-up over the
    first 20% of steps to `lr`, then linear decay to 0). Returns the model in eval mode."""
    device = x.device
    generator = torch.Generator(device=device).manual_seed(seed)
    steps_per_epoch = max(1, len(x) // batch_size)
    total = epochs * steps_per_epoch
    named = list(model.named_parameters())  # no weight decay on biases and batch-norm scales
    decay = [p for name, p in named if not (p.ndim <= 1 or name.endswith(".bias"))]
    no_decay = [p for name, p in named if p.ndim <= 1 or name.endswith(".bias")]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay}]  # SGD's default decay: 0
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    warmup = max(1, int(0.2 * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator, device=device)
        running = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            rows = order[step * batch_size : (step + 1) * batch_size]
            batch = random_shift(x.index_select(0, rows), crop, generator, flip=True).float()
            with autocast:
                loss = F.cross_entropy(model(batch), y.index_select(0, rows), label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.detach()
        if log is not None:
            mean_loss, seconds = float(running) / steps_per_epoch, time.perf_counter() - start
            log(f"teacher epoch {epoch + 1}/{epochs}: loss {mean_loss:.3f} ({seconds:.0f} s)")
    return model.eval()


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> np.ndarray:
    """fp32 logits of `model` (eval mode) on raw inputs `x` (any dtype, on the model's device)."""
    model.eval()
    logits = [model(x[i : i + batch_size].float()).float() for i in range(0, len(x), batch_size)]
    out: np.ndarray = torch.cat(logits).cpu().numpy()
    return out
