"""A small convolutional student for images: two conv blocks and a linear head."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ckd.students.base import Normalize, image_shape


class ConvStudent(nn.Module):
    """normalise -> [Conv3x3 -> ReLU -> MaxPool2] x 2 -> global average pool -> Linear(classes)."""

    def __init__(
        self, sample_shape: Sequence[int], num_classes: int, normalize: Normalize, channels: Sequence[int] = (16, 32)
    ) -> None:
        super().__init__()
        self.image_shape = image_shape(sample_shape, "cnn")
        self.normalize = normalize
        c_in = self.image_shape[0]
        blocks: list[nn.Module] = []
        for c_out in channels:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.normalize(x).reshape(-1, *self.image_shape)
        return self.head(self.features(x).mean(dim=(2, 3)))
