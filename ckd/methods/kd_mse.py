"""`kd_mse`: per-sample logit matching (Ba & Caruana, "Do Deep Nets Really Need to be Deep?", 2014)."""

from torch import Tensor

from ckd.methods.base import GroupSize, Method, positive


class LogitMatching(Method):
    """L = w_mse MSE(s, t) / var(t) + w_ce CE(y, softmax(s)); var(t) is the teacher scores' variance over
    the queried samples, so the weight means the same for any teacher scale."""

    uses_labels = True

    def __init__(
        self, num_classes: int, teacher_var: float, labelled: bool, w_mse: float = 1.0, w_ce: float = 1.0
    ) -> None:
        super().__init__(num_classes, teacher_var, labelled)
        self.w_mse, self.w_ce = positive("w_mse", w_mse), positive("w_ce", w_ce)

    def loss(self, s: Tensor, t: Tensor, y: Tensor | None, group_size: GroupSize | None) -> Tensor:
        return self.with_ce(self.w_mse * ((s - t) ** 2).mean() / self.teacher_var, s, y)
