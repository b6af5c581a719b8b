"""`kd`: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network" (2015)."""

from torch import Tensor

from ckd.methods.base import GroupSize, Method, kd_term, positive


class KnowledgeDistillation(Method):
    """L = T^2 KL(softmax(t/T) || softmax(s/T)) + w_ce CE(y, softmax(s))  (CE only with labels)."""

    uses_labels = True

    def __init__(
        self, num_classes: int, teacher_var: float, labelled: bool, temperature: float = 4.0, w_ce: float = 1.0
    ) -> None:
        super().__init__(num_classes, teacher_var, labelled)
        self.temperature = positive("temperature", temperature) or 1.0
        self.w_ce = positive("w_ce", w_ce)

    def loss(self, s: Tensor, t: Tensor, y: Tensor | None, group_size: GroupSize | None) -> Tensor:
        return self.with_ce(kd_term(s, t, self.temperature), s, y)
