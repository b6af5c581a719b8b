"""`rkd`: Park, Kim, Lu, Cho, "Relational Knowledge Distillation" (CVPR 2019), on output logits."""

import torch
import torch.nn.functional as F
from torch import Tensor

from ckd.methods.base import GroupSize, Method, positive, soft_cross_entropy


def _normalised_distances(e: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(e, e)
    off_diagonal = ~torch.eye(len(e), dtype=torch.bool, device=e.device)
    return d / d[off_diagonal].mean().clamp_min(1e-8)


def _angles(e: torch.Tensor) -> torch.Tensor:
    """cos of the angle at j formed by (i, j, k): <(e_i - e_j)/|.|, (e_k - e_j)/|.|>, for all triplets."""
    v = F.normalize(e[None, :, :] - e[:, None, :], p=2, dim=2)  # v[j, i] = e_i - e_j, normalised
    return torch.bmm(v, v.transpose(1, 2)).reshape(-1)


def rkd_distance(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """L_D = mean Huber(psi_D(s_i, s_j), psi_D(t_i, t_j)), psi_D = |e_i - e_j| / mean pairwise distance."""
    return F.smooth_l1_loss(_normalised_distances(s), _normalised_distances(t))


def rkd_angle(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """L_A = mean Huber(psi_A(s_i, s_j, s_k), psi_A(t_i, t_j, t_k)), psi_A = cos of the angle at j."""
    return F.smooth_l1_loss(_angles(s), _angles(t))


class RelationalDistillation(Method):
    """L = w_dist L_D + w_angle L_A + CE(y) (the paper pairs RKD with the task loss; without labels the
    teacher's argmax stands in). Defaults: the paper's 1 and 2 for distance and angle."""

    uses_labels = True

    def __init__(
        self, num_classes: int, teacher_var: float, labelled: bool, w_dist: float = 1.0, w_angle: float = 2.0
    ) -> None:
        super().__init__(num_classes, teacher_var, labelled)
        self.w_dist, self.w_angle = positive("w_dist", w_dist), positive("w_angle", w_angle)

    def loss(self, s: Tensor, t: Tensor, y: Tensor | None, group_size: GroupSize | None) -> Tensor:
        if y is None:
            y = F.one_hot(t.argmax(-1), self.num_classes).to(s.dtype)
        return soft_cross_entropy(s, y) + self.w_dist * rkd_distance(s, t) + self.w_angle * rkd_angle(s, t)
