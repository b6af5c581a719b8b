"""Student-side input augmentation with the cached teacher targets of the un-augmented inputs.

No teacher call is made for an augmented input: the student learns to give a shifted digit the
teacher's answer for the original. Measured before the project (../shared/research): +7 to +10
points for KD on MNIST, the largest lever found.
"""

from __future__ import annotations

import torch

from ckd.errors import ConfigError

SHIFTS = ("shift", "shift_flip")  # the augmentations `ShiftedGather` applies


def resolve_augment(requested: str, sample_shape: tuple[int, ...], is_image: bool) -> tuple[str, int]:
    """Return (kind, max shift in pixels). `auto`: shifts for images at least 16 px wide (1 px below 24 px,
    else 2 px), none for tables and tiny images (on 8x8 digits a 1-px shift cost KD 4.6 points at N=60).
    Flips only when asked: they change the meaning of digits and letters. `corrupt` (any input): feature
    noise and dropout (`corrupt_features`), the tables' and embeddings' augmentation."""
    if requested == "corrupt":
        return "corrupt", 0
    if requested == "none" or (requested == "auto" and (not is_image or sample_shape[-1] < 16)):
        return "none", 0
    if len(sample_shape) not in (2, 3):
        raise ConfigError(
            "student.augment", f"{requested!r} needs image inputs [H, W] or [C, H, W], got {sample_shape}; use none"
        )
    return ("shift" if requested == "auto" else requested), 1 if sample_shape[-1] < 24 else 2


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator, flip: bool = False) -> torch.Tensor:
    """Translate each image by an integer (dy, dx) in [-max_shift, max_shift]^2, filling with zeros
    (the raw background); one batched gather, no Python loop per sample."""
    squeeze = x.dim() == 3
    images = x.unsqueeze(1) if squeeze else x  # [B, C, H, W]
    b, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator, device=generator.device).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] + offsets[0][:, None]  # [B, H]
    cols = torch.arange(w, device=x.device)[None, :] + offsets[1][:, None]  # [B, W]
    if flip:
        mirrored = torch.rand(b, generator=generator, device=generator.device).to(x.device) < 0.5
        cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    batch_index = torch.arange(b, device=x.device)[:, None, None]
    shifted = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return shifted.squeeze(1) if squeeze else shifted


class ShiftedGather:
    """`random_shift(x.index_select(0, rows), max_shift, generator, flip)` as one gather: the data are padded
    once and flattened; a table holds, per outcome (dy, dx, mirrored), the flat offsets of an image's pixels in
    its padded copy, and a batch is `flat[row * stride + table[outcome]]` (contiguous NCHW): about five
    operations a batch, not twenty (bench/cifar10's data-path figure); the table is 1.2 MB for 32x32 RGB."""

    def __init__(self, x: torch.Tensor, max_shift: int, flip: bool) -> None:
        self.squeeze = x.dim() == 3
        images = x.unsqueeze(1) if self.squeeze else x  # [N, C, H, W]
        channels, height, width = images.shape[1:]
        padded = torch.nn.functional.pad(images, (max_shift,) * 4)
        self.flat = padded.reshape(-1)
        padded_height, padded_width = padded.shape[-2:]
        self.stride = channels * padded_height * padded_width
        base = (
            torch.arange(channels, device=x.device)[:, None, None] * padded_height * padded_width
            + torch.arange(height, device=x.device)[None, :, None] * padded_width
            + torch.arange(width, device=x.device)[None, None, :]
        )
        span = range(2 * max_shift + 1)
        self.table = torch.stack(
            [
                ((base.flip(-1) if mirrored else base) + dy * padded_width + dx).reshape(-1)
                for mirrored in ((False, True) if flip else (False,))
                for dy in span
                for dx in span
            ]
        )
        self.shape = tuple(images.shape[1:])

    def __call__(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        outcome = torch.randint(len(self.table), (len(rows),), generator=generator, device=generator.device)
        index = rows[:, None] * self.stride + self.table[outcome.to(rows.device)]
        out = self.flat[index].view(len(rows), *self.shape)
        return out.squeeze(1) if self.squeeze else out


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one random size x size square per image (DeVries & Taylor 2017), batched."""
    squeeze = x.dim() == 3
    images = x.unsqueeze(1) if squeeze else x
    b, _, h, w = images.shape
    inside = []  # [B, H] and [B, W]: which rows and columns the hole covers
    for length in (h, w):
        start = torch.randint(0, length, (b,), generator=generator, device=generator.device).to(x.device)[:, None]
        index = torch.arange(length, device=x.device)[None, :]
        inside.append((index >= start - size // 2) & (index < start - size // 2 + size))
    hole = (inside[0][:, :, None] & inside[1][:, None, :])[:, None]
    out = images.masked_fill(hole, 0.0)
    return out.squeeze(1) if squeeze else out


# Feature corruption for tables and embeddings (student.augment: corrupt, and the strong view of the pool term),
# in units of each feature's pool standard deviation: the augmentation a table has where shifts make no sense.
CORRUPT_NOISE = 0.1  # Gaussian noise, in feature stds
CORRUPT_DROP = 0.1  # fraction of features reset to their pool mean (VIME-style masking, Yoon et al. 2020)


def corrupt_features(
    x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, strength: float, generator: torch.Generator
) -> torch.Tensor:
    """x' = m * mean + (1 - m) * (x + strength * CORRUPT_NOISE * std * eps), eps ~ N(0, 1) and
    m ~ Bernoulli(strength * CORRUPT_DROP) per feature: noise and feature dropout scaled to each feature's
    spread, so one strength serves 0-100 pen coordinates and unit-norm sentence embeddings alike."""
    eps = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
    dropped = torch.rand(x.shape, generator=generator, device=generator.device).to(x.device) < strength * CORRUPT_DROP
    return torch.where(dropped, mean.expand_as(x), x + strength * CORRUPT_NOISE * std * eps)
