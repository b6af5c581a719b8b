"""Each loss on a tiny example computed by hand, and the properties the docstrings claim."""

import math

import pytest
import torch
import torch.nn.functional as F

from ckd.methods import build_method
from ckd.methods.base import group_difference, kd_term
from ckd.methods.dist import pearson_distance
from ckd.methods.rkd import rkd_angle, rkd_distance

# one pair: row 0 is the positive, row 1 the negative
S = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
T = torch.tensor([[3.0, 2.0], [1.0, 1.0]])
Y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def make(name, labelled=True, teacher_var=2.0, **kwargs):
    return build_method(name, num_classes=2, teacher_var=teacher_var, labelled=labelled, **kwargs)


def test_kd_term_by_hand():
    s, t = torch.zeros(1, 2), torch.tensor([[0.0, math.log(3.0)]])
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kd_term(s, t, 1.0).item() == pytest.approx(expected, abs=1e-6)
    assert make("kd", temperature=1.0, w_ce=0.0).loss(s, t, None, None).item() == pytest.approx(expected, abs=1e-6)


def test_ce_by_hand_and_teacher_argmax_without_labels():
    s = torch.zeros(1, 2)
    assert make("ce").loss(s, T[:1], Y[1:], None).item() == pytest.approx(math.log(2))
    assert make("ce", labelled=False).loss(torch.tensor([[2.0, 0.0]]), T[:1], None, None).item() == pytest.approx(
        math.log(1 + math.exp(-2)), abs=1e-6
    )


def test_group_difference():
    values = torch.arange(8.0).reshape(4, 2)  # one group of k=2: rows 0,1 positive, 2,3 negative
    assert group_difference(values, 2).tolist() == [[-4.0, -4.0]]


def test_ckd_paper_by_hand():
    # d_s = [1, 2], d_t = [2, 1], d_y = [1, -1]: MSE(d_s, d_t) = 1, MSE(d_s, d_y) = 4.5
    assert make("ckd_paper").loss(S, T, Y, 1).item() == pytest.approx(5.5)
    assert make("ckd_paper", w_cls=0.0).loss(S, T, Y, 1).item() == pytest.approx(1.0)
    # its per-sample control: MSE(s, t) + MSE(s, y) over the same members
    control = ((S - T) ** 2).mean() + ((S - Y) ** 2).mean()
    assert make("ckd_paper", compare=False).loss(S, T, Y, 1).item() == pytest.approx(control.item())


def test_ckd_batch_mean_anchor_by_hand():
    # relation MSE(d_s, d_t) / var = 1 / 2; anchor MSE([.5, 1], [2, 1.5]) / var = 1.25 / 2
    method = make("ckd", anchor="batch_mean", w_ce=0.0)
    assert method.loss(S, T, Y, 1).item() == pytest.approx(0.5 + 0.625)


def test_ckd_kd_anchor_by_hand():
    method = make("ckd", temperature=1.0, w_ce=0.0)
    assert method.loss(S, T, None, 1).item() == pytest.approx(0.5 + kd_term(S, T, 1.0).item(), abs=1e-6)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("ckd", {}),
        ("ckd_paper", {"w_cls": 0.0}),
        ("ckd_kd", {"w_cls": 0.0}),
        ("ckd", {"anchor": "batch_mean", "w_anchor": 0.0}),
    ],
)
def test_comparative_target_unchanged_by_a_constant_on_every_teacher_logit(name, kwargs):
    method = make(name, **kwargs)
    torch.manual_seed(0)
    s, t = torch.randn(8, 2), torch.randn(8, 2)
    assert method.loss(s, t, None, 2).item() == pytest.approx(method.loss(s, t + 7.5, None, 2).item(), abs=1e-5)


def bias_gradient(method, s, t):
    bias = torch.zeros(2, requires_grad=True)
    method.loss(s + bias, t, None, 1).backward()
    return bias.grad


def test_paper_loss_leaves_class_levels_free_and_ckd_anchors_them():
    torch.manual_seed(0)
    s, t = torch.randn(6, 2), torch.randn(6, 2) * 5
    assert torch.allclose(bias_gradient(make("ckd_paper", labelled=False), s, t), torch.zeros(2), atol=1e-7)
    assert bias_gradient(make("ckd", labelled=False), s, t).abs().sum() > 1e-3
    assert bias_gradient(make("ckd", labelled=False, anchor="batch_mean"), s, t).abs().sum() > 1e-3


def test_kd_mse_by_hand():
    # MSE(s, t) = (4 + 0 + 1 + 1) / 4 = 1.5, over var 2
    assert make("kd_mse", w_ce=0.0).loss(S, T, None, None).item() == pytest.approx(0.75)


def test_rkd_is_zero_for_scaled_copies_and_positive_otherwise():
    torch.manual_seed(0)
    e = torch.randn(6, 4)
    assert rkd_distance(e, 3 * e).item() == pytest.approx(0.0, abs=1e-6)
    assert rkd_angle(e, 3 * e + 1).item() == pytest.approx(0.0, abs=1e-6)
    assert rkd_distance(e, torch.randn(6, 4)).item() > 0


def test_dist_pearson_by_hand():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    assert pearson_distance(a, 2 * a + 1, 1).item() == pytest.approx(0.0, abs=1e-6)
    assert pearson_distance(a, -a, 1).item() == pytest.approx(2.0, abs=1e-6)
    method = make("dist", w_ce=0.0)
    logits = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    assert method.loss(logits, logits, None, None).item() == pytest.approx(0.0, abs=1e-6)
    assert method.loss(logits, -logits, None, None).item() == pytest.approx(4.0, abs=1e-5)


def test_mixup_mixes_inputs_and_targets_alike():
    method = make("mixup")
    torch.manual_seed(0)
    x = torch.randn(16, 3)
    weights = torch.randn(3, 2)
    t, y = x @ weights, F.one_hot(torch.arange(16) % 2, 2).float()
    mixed_x, mixed_t, mixed_y = method.mix(x, t, y, torch.Generator().manual_seed(1))
    assert torch.allclose(mixed_t, mixed_x @ weights, atol=1e-5)  # the same lambda and partner for both
    assert torch.allclose(mixed_y.sum(1), torch.ones(16)) and not torch.equal(mixed_x, x)
