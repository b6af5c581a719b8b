"""`ce`: cross-entropy on labels only; without labels, on the teacher's argmax (hard pseudo-labels)."""

import torch.nn.functional as F
from torch import Tensor

from ckd.methods.base import GroupSize, Method, soft_cross_entropy


class CrossEntropy(Method):
    """L = CE(y, softmax(s)); y = one_hot(argmax t) when the pool has no labels."""

    uses_labels = True

    def loss(self, s: Tensor, t: Tensor, y: Tensor | None, group_size: GroupSize | None) -> Tensor:
        if y is None:
            y = F.one_hot(t.argmax(-1), self.num_classes).to(s.dtype)
        return soft_cross_entropy(s, y)
