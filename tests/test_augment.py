import pytest
import torch

from ckd.augment import random_shift, resolve_augment
from ckd.errors import ConfigError


def test_shift_moves_content_and_fills_zeros():
    image = torch.zeros(1, 5, 5)
    image[0, 2, 2] = 1.0
    shifted = torch.stack([random_shift(image, 1, torch.Generator().manual_seed(s))[0] for s in range(40)])
    assert shifted.shape == (40, 5, 5)
    assert torch.all(shifted.sum((1, 2)) == 1.0)  # the pixel never leaves a 1-px border image
    positions = {tuple(torch.nonzero(img)[0].tolist()) for img in shifted}
    assert positions <= {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} and len(positions) > 4


def test_shift_deterministic_and_channel_images():
    x = torch.rand(4, 3, 6, 6)
    a = random_shift(x, 2, torch.Generator().manual_seed(3))
    b = random_shift(x, 2, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape


def test_resolve():
    assert resolve_augment("auto", (8, 8), True) == ("none", 0)
    assert resolve_augment("shift", (8, 8), True) == ("shift", 1)
    assert resolve_augment("auto", (1, 20, 20), True) == ("shift", 1)
    assert resolve_augment("auto", (28, 28), True) == ("shift", 2)
    assert resolve_augment("auto", (20,), False) == ("none", 0)
    with pytest.raises(ConfigError, match="student.augment"):
        resolve_augment("shift", (20,), False)


def test_cutout_zeroes_one_square_per_image():
    from ckd.augment import cutout

    x = torch.ones(8, 10, 10)
    out = cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum((1, 2))
    assert out.shape == x.shape and torch.all(zeros >= 4) and torch.all(zeros <= 16)
