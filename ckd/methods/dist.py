"""`dist`: Huang, You, Wang, Qian, Xu, "Knowledge Distillation from A Stronger Teacher" (NeurIPS 2022)."""

import torch
from torch import Tensor

from ckd.methods.base import GroupSize, Method, positive


def pearson_distance(a: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    """mean of 1 - rho(a, b), Pearson correlation along `dim`."""
    a, b = a - a.mean(dim, keepdim=True), b - b.mean(dim, keepdim=True)
    rho = (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim)).clamp_min(1e-8)
    return (1 - rho).mean()


class DistDistillation(Method):
    """With P = softmax(./tau): L = w_inter tau^2 (1 - rho over classes, per sample)
    + w_intra tau^2 (1 - rho over the batch, per class) + w_ce CE(y)."""

    uses_labels = True

    def __init__(
        self,
        num_classes: int,
        teacher_var: float,
        labelled: bool,
        temperature: float = 1.0,
        w_inter: float = 1.0,
        w_intra: float = 1.0,
        w_ce: float = 1.0,
    ) -> None:
        super().__init__(num_classes, teacher_var, labelled)
        self.temperature = positive("temperature", temperature) or 1.0
        self.w_inter, self.w_intra = positive("w_inter", w_inter), positive("w_intra", w_intra)
        self.w_ce = positive("w_ce", w_ce)

    def loss(self, s: Tensor, t: Tensor, y: Tensor | None, group_size: GroupSize | None) -> Tensor:
        p_s, p_t = torch.softmax(s / self.temperature, -1), torch.softmax(t / self.temperature, -1)
        distance = self.w_inter * pearson_distance(p_s, p_t, 1) + self.w_intra * pearson_distance(p_s, p_t, 0)
        return self.with_ce(self.temperature**2 * distance, s, y)
