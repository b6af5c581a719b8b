"""`ckd`: the project's Comparative Knowledge Distillation, with the class levels anchored.

Comparison (Wilf et al., arXiv 2311.02253), for groups of k positives P and k negatives N:
    d_s = mean_P s - mean_N s,   d_t = mean_P t - mean_N t,
    L_rel = MSE(d_s, d_t) / var(t)
with var(t) the teacher scores' variance over the queried samples, so `w_rel` means the same for any scale.

Why an anchor: L_rel is unchanged by a constant added to class k's logit of every input, so the class levels
(the last bias) get no gradient and drift, moving the argmax (the paper's loss lands 20-37 points below KD:
../shared/research/ckd-calibration.md). An anchor term fixes the levels:
  * anchor="kd" (default): Hinton's per-sample T^2 KL(softmax(t/T) || softmax(s/T)) on the same members pins
    per-class levels (softmax ignores only a shift shared by one sample's classes); the calibration's best.
  * anchor="batch_mean": MSE(mean_batch s, mean_batch t) / var(t). With a pair batch, MSE(d_s, d_t) + anchor
    = 2 within-batch variance of (s - t) + squared mean error: exactly the term the differences drop.
Labels enter as per-sample CE (the paper's MSE(d_s, d_y) pulls differences to +-1 while the teacher's are
+-10..25, so the student settles between two targets; ckd_paper keeps that form).

    L = anchor + w_rel L_rel + w_ce CE(y)

`compare=False` is the matched per-sample control: the same members and the same anchor, with L_rel
replaced by per-sample logit matching MSE(s, t) / var(t); any gain of `ckd` over it is the comparison's.
"""

from torch import Tensor

from ckd.errors import ConfigError
from ckd.methods.base import GroupSize, Method, group_difference, kd_term, positive, require_groups

ANCHORS = ("kd", "batch_mean")


class AnchoredCKD(Method):
    uses_groups = True
    uses_labels = True

    def __init__(
        self,
        num_classes: int,
        teacher_var: float,
        labelled: bool,
        w_rel: float = 1.0,
        anchor: str = "kd",
        temperature: float = 4.0,
        w_anchor: float = 1.0,
        w_ce: float = 1.0,
        compare: bool = True,
    ) -> None:
        super().__init__(num_classes, teacher_var, labelled)
        if anchor not in ANCHORS:
            raise ConfigError("student.method_args.anchor", f"must be one of {', '.join(ANCHORS)}, got {anchor!r}")
        self.anchor = anchor
        self.w_rel, self.w_anchor = positive("w_rel", w_rel), positive("w_anchor", w_anchor)
        self.w_ce = positive("w_ce", w_ce)
        self.temperature = positive("temperature", temperature) or 1.0
        self.compare = bool(compare)

    def relation_term(self, s: Tensor, t: Tensor, group_size: GroupSize | None) -> Tensor:
        if self.compare:
            k = require_groups(group_size, "ckd")
            s, t = group_difference(s, k), group_difference(t, k)
        return ((s - t) ** 2).mean() / self.teacher_var

    def anchor_term(self, s: Tensor, t: Tensor) -> Tensor:
        if self.anchor == "kd":
            return kd_term(s, t, self.temperature)
        return ((s.mean(0) - t.mean(0)) ** 2).mean() / self.teacher_var

    def loss(self, s: Tensor, t: Tensor, y: Tensor | None, group_size: GroupSize | None) -> Tensor:
        loss = self.w_anchor * self.anchor_term(s, t) + self.w_rel * self.relation_term(s, t, group_size)
        return self.with_ce(loss, s, y)
