import numpy as np
import pytest
import torch

from ckd.augment import ShiftedGather, random_shift, resolve_augment
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


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("shape", [(6, 7), (3, 6, 7)])
def test_shifted_gather_reads_each_row_at_one_of_random_shifts_outcomes(shape, flip):
    """One indexing step equals index_select + random_shift: each output is its row shifted by some
    (dy, dx) in [-2, 2]^2 (mirrored or not, with flip), zeros filled in; all offsets and both mirror
    states occur; the same seed gives the same batch."""
    x = torch.arange(5 * int(np.prod(shape)), dtype=torch.float32).reshape(5, *shape) + 1
    gather = ShiftedGather(x, 2, flip=flip)
    rows = torch.tensor([4, 0, 2, 2, 1] * 80)
    out = gather(rows, torch.Generator().manual_seed(0))
    assert out.shape == (len(rows), *shape)
    images = x if len(shape) == 3 else x[:, None]
    padded = torch.nn.functional.pad(images, (2,) * 4)
    seen = set()
    for i, row in enumerate(rows.tolist()):
        got = out[i] if len(shape) == 3 else out[i][None]
        crops = {
            (dy, dx): padded[row, :, dy : dy + shape[-2], dx : dx + shape[-1]] for dy in range(5) for dx in range(5)
        }
        matches = {
            (dy, dx, m)
            for (dy, dx), crop in crops.items()
            for m in ((False, True) if flip else (False,))
            if torch.equal(got, crop.flip(-1) if m else crop)
        }
        assert matches, f"sample {i} is not a shift of row {row}"
        seen |= matches
    assert {(dy, dx) for dy, dx, _ in seen} == {(dy, dx) for dy in range(5) for dx in range(5)}
    assert {m for *_, m in seen} == ({False, True} if flip else {False})
    assert torch.equal(out, gather(rows, torch.Generator().manual_seed(0)))
