"""`kd`: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network" (2015)."""

from ckd.methods.base import Method, kd_term, positive, soft_cross_entropy


class KnowledgeDistillation(Method):
    """L = T^2 KL(softmax(t/T) || softmax(s/T)) + w_ce CE(y, softmax(s))  (CE only with labels)."""

    uses_labels = True

    def __init__(self, num_classes, teacher_var, labelled, temperature: float = 4.0, w_ce: float = 1.0):
        super().__init__(num_classes, teacher_var, labelled)
        self.temperature = positive("temperature", temperature) or 1.0
        self.w_ce = positive("w_ce", w_ce)

    def loss(self, s, t, y, group_size):
        loss = kd_term(s, t, self.temperature)
        if y is not None and self.w_ce:
            loss = loss + self.w_ce * soft_cross_entropy(s, y)
        return loss
