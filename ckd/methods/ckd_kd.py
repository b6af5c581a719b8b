"""`ckd_kd`: the paper's group loss (Wilf et al., arXiv 2311.02253) plus Hinton's per-sample KD loss.

    L = [w_rel MSE(d_s, d_t) + w_cls MSE(d_s, d_y)] + T^2 KL(softmax(t/T) || softmax(s/T)) + w_ce CE(y)

The KD term anchors the class levels that the differences leave free. Unlike `ckd`, the group loss is
unnormalised and keeps the paper's MSE label term. `compare=False` is its per-sample control.
"""

from torch import Tensor

from ckd.methods.base import GroupSize, kd_term, positive
from ckd.methods.ckd_paper import PaperCKD


class PaperCKDPlusKD(PaperCKD):
    """L = [w_rel MSE(d_s, d_t) + w_cls MSE(d_s, d_y)] + T^2 KL(softmax(t/T) || softmax(s/T)) + w_ce CE(y)
    (the label terms only with labels): `ckd_paper`'s loss plus `kd`'s. Matched control: `compare=False`, the
    same members and KD term with d_s, d_t, d_y replaced by s, t, y per sample."""

    def __init__(
        self,
        num_classes: int,
        teacher_var: float,
        labelled: bool,
        w_rel: float = 1.0,
        w_cls: float = 1.0,
        temperature: float = 4.0,
        w_ce: float = 1.0,
        compare: bool = True,
    ) -> None:
        super().__init__(num_classes, teacher_var, labelled, w_rel, w_cls, compare)
        self.w_ce = positive("w_ce", w_ce)
        self.temperature = positive("temperature", temperature) or 1.0

    def loss(self, s: Tensor, t: Tensor, y: Tensor | None, group_size: GroupSize | None) -> Tensor:
        return self.with_ce(super().loss(s, t, y, group_size) + kd_term(s, t, self.temperature), s, y)
