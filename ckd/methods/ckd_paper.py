"""`ckd_paper`: the loss of Wilf et al., "Comparative Knowledge Distillation" (arXiv 2311.02253), as written.

For a group of k positives P and k negatives N, with s the student's logits, t the teacher's scores and
y one-hot labels:
    d_s = mean_{i in P} s(x_i) - mean_{j in N} s(x_j)    (likewise d_t, d_y)
    L   = w_rel MSE(d_s, d_t) + w_cls MSE(d_s, d_y)      (the w_cls term only with labels)
k = 1 is the pair form. Known flaw (measured in ../shared/research): only differences are seen, so a
constant added to one class's logits for every input has zero gradient (the last bias never learns)
and the class levels drift; kept exactly for comparison. `compare=False` is the matched per-sample
control: the same members, with d_s, d_t, d_y replaced by s, t, y per sample.
"""

from torch import Tensor

from ckd.methods.base import GroupSize, Method, group_difference, positive, require_groups


class PaperCKD(Method):
    uses_groups = True
    uses_labels = True

    def __init__(
        self,
        num_classes: int,
        teacher_var: float,
        labelled: bool,
        w_rel: float = 1.0,
        w_cls: float = 1.0,
        compare: bool = True,
    ) -> None:
        super().__init__(num_classes, teacher_var, labelled)
        self.w_rel, self.w_cls, self.compare = positive("w_rel", w_rel), positive("w_cls", w_cls), bool(compare)

    def loss(self, s: Tensor, t: Tensor, y: Tensor | None, group_size: GroupSize | None) -> Tensor:
        if self.compare:
            k = require_groups(group_size, "ckd_paper")
            s, t = group_difference(s, k), group_difference(t, k)
            y = group_difference(y, k) if y is not None else None
        loss = self.w_rel * ((s - t) ** 2).mean()
        if y is not None and self.w_cls:
            loss = loss + self.w_cls * ((s - y) ** 2).mean()
        return loss
