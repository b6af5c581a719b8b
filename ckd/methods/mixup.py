"""`mixup`: Zhang, Cisse, Dauphin, Lopez-Paz, "mixup: Beyond Empirical Risk Minimization" (ICLR 2018),
used without new teacher calls: the targets are the same mix of the cached teacher scores."""

import torch
from torch import Tensor

from ckd.methods.base import positive
from ckd.methods.kd import KnowledgeDistillation


class MixupDistillation(KnowledgeDistillation):
    """x' = l x_i + (1-l) x_j, t' = l t_i + (1-l) t_j, y' = l y_i + (1-l) y_j with l ~ Beta(a, a);
    L = T^2 KL(softmax(t'/T) || softmax(s(x')/T)) + w_ce CE(y', softmax(s(x'))) (`kd`'s loss on the mix)."""

    def __init__(
        self,
        num_classes: int,
        teacher_var: float,
        labelled: bool,
        alpha: float = 0.4,
        temperature: float = 4.0,
        w_ce: float = 1.0,
    ) -> None:
        self.alpha = positive("alpha", alpha) or 0.4
        super().__init__(num_classes, teacher_var, labelled, temperature, w_ce)

    def mix(
        self, x: Tensor, t: Tensor, y: Tensor | None, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        n = x.shape[0]
        beta = torch.distributions.Beta(self.alpha, self.alpha)
        # Beta sampling takes no generator: seed the draw from ours, so a run stays reproducible
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            lam = beta.sample((n,)).to(x.device)
        partner = torch.randperm(n, generator=generator, device=generator.device).to(x.device)

        def blend(a: Tensor) -> Tensor:  # l a_i + (1-l) a_j, l broadcast over a's trailing dimensions
            weight = lam.reshape(n, *([1] * (a.dim() - 1)))
            return weight * a + (1 - weight) * a[partner]

        return blend(x), blend(t), None if y is None else blend(y)
