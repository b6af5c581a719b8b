"""Training the student on the comparative data set, with model selection on validation data only.

The N queried samples are split (seeded) into train and validation parts; every grid candidate (learning
rates x list-valued method arguments) trains `student.steps` Adam steps on the train part, evaluated every
`eval_every` steps on validation. The test split is never read here. Batches are gathered by index on the device.

Selection (`student.model_selection`, issue 13): with 10-60 validation samples accuracy moves in steps of 2-10
points, so the single best (candidate, step) is noise and a refit stopped there under-trains (bench/selection_digits/).
  plateau (default): score = mean validation accuracy (against labels, else the teacher's argmax) over the last
    half of the evaluations, ties broken by the mean KL(softmax(t/T) || softmax(s/T)) at T = 4 (far less noisy
    than 20 hard labels). The refit on all N runs the full `steps` and returns the average of the last
    `average_last` checkpoints (SWA, Izmailov et al. 2018).
  best_step: the best (validation accuracy, -cross-entropy to the teacher) over candidates x steps; the refit
    runs that many steps.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ckd.augment import SHIFTS, ShiftedGather, corrupt_features, cutout, random_shift, resolve_augment
from ckd.comparative import ComparativeSet
from ckd.config import StudentConfig, validation_split
from ckd.errors import CkdError
from ckd.methods import METHODS, Method, build_method
from ckd.runtime import forward_flops, resolve_threads, set_torch_threads
from ckd.students import build_student

log = logging.getLogger(__name__)

# Called at every evaluation with the model (eval mode); its result joins the curve point (plots only, never selection)
EvalHook = Callable[[int, torch.nn.Module], "dict[str, float] | None"]


@dataclass
class TrainingData:
    """The comparative data set on the training device."""

    x: torch.Tensor
    teacher: torch.Tensor
    labels: torch.Tensor | None  # one-hot float [N, C], None without labels
    positives: torch.Tensor
    negatives: torch.Tensor
    sample_shape: tuple[int, ...]
    num_classes: int
    norm_mean: np.ndarray
    norm_std: np.ndarray
    is_image: bool
    unlabelled: torch.Tensor | None = None  # pool inputs the teacher was never asked about (free)

    @classmethod
    def from_set(cls, data: ComparativeSet, device: torch.device) -> TrainingData:
        def tensor(values: np.ndarray, dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
            return torch.as_tensor(values, dtype=dtype, device=device)

        labels = None if data.labels is None else F.one_hot(tensor(data.labels, None), data.num_classes).float()
        return cls(
            tensor(data.x),
            tensor(data.teacher),
            labels,
            tensor(data.positives, None),
            tensor(data.negatives, None),
            tuple(data.x.shape[1:]),
            data.num_classes,
            data.norm_mean,
            data.norm_std,
            data.is_image,
            tensor(data.unlabelled) if data.unlabelled is not None and len(data.unlabelled) else None,
        )

    @property
    def group_size(self) -> tuple[int, int]:
        """(positives, negatives) per group: (k, k), or e.g. the paper's (2, 1)."""
        return int(self.positives.shape[1]), int(self.negatives.shape[1])

    def targets(self, rows: torch.Tensor) -> torch.Tensor:
        """What validation accuracy is measured against: labels, else the teacher's argmax."""
        return (self.labels[rows] if self.labels is not None else self.teacher[rows]).argmax(-1)


@dataclass
class Candidate:
    lr: float
    method_args: dict[str, Any]


@dataclass
class FitResult:
    state: dict[str, torch.Tensor]
    best_step: int
    val_accuracy: float
    val_xent: float
    curve: list[dict[str, float]] = field(default_factory=list)
    score: tuple[float, ...] = (-math.inf,)  # higher is better; compared across candidates


@dataclass
class TrainOutcome:
    model: torch.nn.Module
    chosen: Candidate
    val_accuracy: float
    best_step: int
    steps_run: int
    curve: list[dict[str, float]]
    selection: list[dict[str, Any]]
    device: str
    augment: str
    threads: int = 1
    precision: str = "fp32"


def candidate_grid(config: StudentConfig) -> list[Candidate]:
    """Learning rates x every list-valued method argument."""
    keys = list(config.method_args)
    values = [v if isinstance(v, (list, tuple)) else [v] for v in config.method_args.values()]
    return [Candidate(lr, dict(zip(keys, combo))) for lr in config.lr for combo in itertools.product(*values)]


def split_rows(num_samples: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    _, count = validation_split(num_samples, val_fraction)  # the rule every stage checks against the budget
    order = np.random.default_rng(seed).permutation(num_samples)
    return np.sort(order[count:]), np.sort(order[:count])


def groups_within(data: TrainingData, rows: np.ndarray) -> torch.Tensor:
    """Indices of the groups whose members all lie in `rows` (no validation sample leaks into training)."""
    allowed = torch.zeros(len(data.x), dtype=torch.bool, device=data.x.device)
    allowed[torch.as_tensor(rows, device=data.x.device)] = True
    inside = allowed[data.positives].all(1) & allowed[data.negatives].all(1)
    return torch.nonzero(inside).squeeze(1)


SELECTION_TEMPERATURE = 4.0  # softens the teacher's answers for the KL tie-break (KD's usual T)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def draw(size: int, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """`count` random indices into `size` rows, drawn on the generator's device, moved to `device`."""
    return torch.randint(size, (count,), generator=generator, device=generator.device).to(device)


def evaluate(model: torch.nn.Module, data: TrainingData, rows: torch.Tensor) -> tuple[float, float, float]:
    """(accuracy, cross-entropy against the teacher's softmax, KL(softmax(t/T) || softmax(s/T)) at
    T = SELECTION_TEMPERATURE) on `rows`."""
    model.eval()
    with torch.no_grad():
        logits = model(data.x[rows])
        teacher = data.teacher[rows]
        accuracy = (logits.argmax(-1) == data.targets(rows)).float().mean().item()
        xent = -(torch.softmax(teacher, -1) * F.log_softmax(logits, -1)).sum(-1).mean().item()
        kl = F.kl_div(
            F.log_softmax(logits / SELECTION_TEMPERATURE, -1),
            F.log_softmax(teacher / SELECTION_TEMPERATURE, -1),
            log_target=True,
            reduction="batchmean",
        ).item()
    model.train()
    return accuracy, xent, kl


def plateau_score(curve: list[dict[str, float]]) -> tuple[float, float]:
    """(mean validation accuracy, -mean KL to the teacher) over the last half of the evaluations: a
    candidate is judged by where it settles, not by its luckiest step (higher is better)."""
    settled = curve[len(curve) // 2 :]
    return (statistics.fmean(p["val_accuracy"] for p in settled), -statistics.fmean(p["val_kl"] for p in settled))


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Equal-weight average of checkpoints (SWA's average; the MLP and CNN students have no batch norm)."""
    return {k: torch.stack([s[k].float() for s in states]).mean(0).to(states[0][k].dtype) for k in states[0]}


class BatchSampler:
    """Draws a training batch by index: B samples, or B groups laid out k+ positives then k- negatives."""

    def __init__(
        self, data: TrainingData, rows: np.ndarray, uses_groups: bool, batch_size: int, generator: torch.Generator
    ) -> None:
        self.data, self.batch_size, self.generator, self.uses_groups = data, batch_size, generator, uses_groups
        self.rows = torch.as_tensor(rows, device=data.x.device)
        if uses_groups:
            self.group_ids = groups_within(data, rows)
            if len(self.group_ids) == 0:
                raise CkdError(
                    "no comparative group lies entirely in the training part; raise "
                    "comparative.max_groups or lower student.val_fraction"
                )

    def members(self) -> torch.Tensor:
        if self.uses_groups:
            groups = self.group_ids[draw(len(self.group_ids), self.batch_size, self.generator, self.group_ids.device)]
            return torch.cat([self.data.positives[groups], self.data.negatives[groups]], dim=1).reshape(-1)
        return self.rows[draw(len(self.rows), self.batch_size, self.generator, self.rows.device)]


def pseudo_label_loss(
    model: torch.nn.Module, weak: torch.Tensor, strong: torch.Tensor, threshold: float
) -> torch.Tensor:
    """mean_i 1[max p(weak_i) >= threshold] CE(argmax p(weak_i), s(strong_i)): the pool terms' core."""
    with torch.no_grad():
        confidence, pseudo = torch.softmax(model(weak), -1).max(-1)
        mask = (confidence >= threshold).float()
    return (F.cross_entropy(model(strong), pseudo, reduction="none") * mask).mean()


def unlabelled_consistency(
    model: torch.nn.Module,
    pool: torch.Tensor,
    count: int,
    augment: tuple[str, int],
    threshold: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """FixMatch (Sohn et al., NeurIPS 2020) on free pool inputs the teacher never saw: the student's confident
    answer on a weakly augmented input is the target for a strongly augmented one (larger shift + cutout),
        L_u = mean_i 1[max p(weak_i) >= tau] CE(argmax p(weak_i), s(strong_i)).
    Matched control: the same recipe with `student.unlabelled_weight: 0`. No teacher call is made, so the
    accuracy gained is per teacher call."""
    inputs = pool.index_select(0, draw(len(pool), count, generator, pool.device))
    weak = random_shift(inputs, augment[1], generator, flip=augment[0] == "shift_flip")
    strong = random_shift(inputs, augment[1] + 1, generator, flip=augment[0] == "shift_flip")
    return pseudo_label_loss(model, weak, cutout(strong, max(2, inputs.shape[-1] // 2), generator), threshold)


POOL_CORRUPTION = 2.0  # the strong view of a table row or embedding: twice `student.augment: corrupt`'s corruption


def unlabelled_consistency_features(
    model: torch.nn.Module,
    pool: torch.Tensor,
    count: int,
    norm: tuple[torch.Tensor, torch.Tensor],
    threshold: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """FixMatch's pool term for inputs without a geometry (table rows, embeddings): the student's confident
    answer on the clean row is the target for a corrupted copy, L_u = mean_i 1[max p(x_i) >= tau] CE(argmax
    p(x_i), s(c(x_i))), c = `corrupt_features` at strength POOL_CORRUPTION (VIME, Yoon et al. NeurIPS 2020).
    Matched control: the same recipe with `student.unlabelled_weight: 0`. No teacher call is made."""
    inputs = pool.index_select(0, draw(len(pool), count, generator, pool.device))
    strong = corrupt_features(inputs, norm[0], norm[1], POOL_CORRUPTION, generator)
    return pseudo_label_loss(model, inputs, strong, threshold)


def neighbour_targets(
    queried: torch.Tensor, scores: torch.Tensor, pool: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label propagation to the free pool by nearest neighbours (the kNN affinities of Iscen et al., CVPR 2019,
    without the diffusion): a pool input's target is the teacher's answer on its k most similar queried inputs,
        q_i = sum_{j in kNN(i)} a_ij softmax(t_j) / sum_j a_ij,   a_ij = max(cos(z_i, z_j), 0)^3,
    z the standardised input (for text, the frozen encoder's embedding), with the weight w_i = 1 - H(q_i) / log C
    (a target spread over the classes counts little). Returns (q [U, C], w [U]). Only queried rows of the
    training part are neighbours: validation answers stay out of training."""
    mean, std = norm
    a = F.normalize((pool.float() - mean) / std, dim=-1)
    b = F.normalize((queried.float() - mean) / std, dim=-1)
    teacher = torch.softmax(scores.float(), -1)
    targets = torch.empty((len(pool), teacher.shape[1]), device=pool.device)
    for start in range(0, len(pool), 4096):  # [4096, N] similarities at a time
        similarity, nearest = (a[start : start + 4096] @ b.T).topk(min(k, len(b)), dim=-1)
        affinity = similarity.clamp(min=0) ** 3 + 1e-12
        weighted = (affinity.unsqueeze(-1) * teacher[nearest]).sum(1)
        targets[start : start + 4096] = weighted / affinity.sum(-1, keepdim=True)
    entropy = -(targets * targets.clamp(min=1e-12).log()).sum(-1)
    return targets, 1 - entropy / math.log(targets.shape[1])


def unlabelled_propagation(
    model: torch.nn.Module,
    pool: torch.Tensor,
    targets: tuple[torch.Tensor, torch.Tensor],
    count: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """The pool term with propagated targets (`neighbour_targets`): L_u = mean_i w_i CE(q_i, s(x_i)).
    Matched controls: the same recipe with `student.unlabelled_weight: 0` (no pool term), and with
    `student.unlabelled_targets: self` (the student's own answers as targets). No teacher call is made."""
    pick = draw(len(pool), count, generator, pool.device)
    q, w = targets[0].index_select(0, pick), targets[1].index_select(0, pick)
    per_sample = -(q * F.log_softmax(model(pool.index_select(0, pick)), -1)).sum(-1)
    return (w * per_sample).mean()


def fit(
    data: TrainingData,
    method: Method,
    model: torch.nn.Module,
    train_rows: np.ndarray,
    val_rows: np.ndarray | None,
    lr: float,
    steps: int,
    config: StudentConfig,
    augment: tuple[str, int],
    seed: int,
    bar: tqdm | None = None,
    on_eval: EvalHook | None = None,
) -> FitResult:
    device = data.x.device
    generator = torch.Generator(device=device).manual_seed(seed)
    sampler = BatchSampler(data, train_rows, method.uses_groups, config.batch_size, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    group_size = data.group_size if method.uses_groups else None
    val = torch.as_tensor(val_rows, device=device) if val_rows is not None else None
    best = FitResult(snapshot(model), 0, -1.0, math.inf)
    plateau = config.model_selection == "plateau"
    recent: collections.deque[dict[str, torch.Tensor]] = collections.deque(maxlen=config.average_last)
    # images: FixMatch needs their augmentation; tables and embeddings: feature corruption, always available
    use_unlabelled = (
        config.unlabelled_weight > 0 and data.unlabelled is not None and (augment[0] != "none" or not data.is_image)
    )
    mean, std = (torch.as_tensor(v, dtype=torch.float32, device=device) for v in (data.norm_mean, data.norm_std))
    norm = (mean, std)
    propagated = None
    if use_unlabelled and config.unlabelled_targets == "neighbours":
        x, t = data.x.index_select(0, sampler.rows), data.teacher.index_select(0, sampler.rows)
        propagated = neighbour_targets(x, t, data.unlabelled, norm, config.unlabelled_neighbours)
    # bf16 autocast of the forward passes and losses (softmax and log-softmax stay fp32 under autocast);
    # the weights, Adam's state and the gradients stay fp32, so no loss scaling is needed.
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    running, seen = 0.0, 0
    curve: list[dict[str, float]] = []
    model.train()
    shifted = ShiftedGather(data.x, augment[1], flip=augment[0] == "shift_flip") if augment[0] in SHIFTS else None
    for step in range(1, steps + 1):
        rows = sampler.members()
        # index_select, not x[rows]: the same gather, about 4x faster on the CPU for a batch of rows
        t = data.teacher.index_select(0, rows)
        y = data.labels.index_select(0, rows) if data.labels is not None else None
        x = data.x.index_select(0, rows) if shifted is None else shifted(rows, generator)  # gather (+ shift, flip)
        if augment[0] == "corrupt":
            x = corrupt_features(x, mean, std, 1.0, generator)
        x, t, y = method.mix(x, t, y, generator)
        with autocast:
            loss = method.loss(model(x), t, y, group_size)
            if use_unlabelled:
                pool, threshold = data.unlabelled, config.unlabelled_threshold
                if propagated is not None:
                    pool_term = unlabelled_propagation(model, pool, propagated, len(rows), generator)
                elif data.is_image:
                    pool_term = unlabelled_consistency(model, pool, len(rows), augment, threshold, generator)
                else:
                    pool_term = unlabelled_consistency_features(model, pool, len(rows), norm, threshold, generator)
                loss = loss + config.unlabelled_weight * pool_term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.detach()
        seen += 1
        if step % config.eval_every == 0 or step == steps:
            train_loss = float(running / seen)
            running, seen = 0.0, 0
            if not math.isfinite(train_loss):
                raise CkdError(f"training diverged (loss {train_loss}) at step {step} with lr={lr}; lower student.lr")
            point = {"step": step, "train_loss": train_loss}
            if val is not None:
                accuracy, xent, kl = evaluate(model, data, val)
                point.update(val_accuracy=accuracy, val_xent=xent, val_kl=kl)
                if not plateau and (accuracy, -xent) > (best.val_accuracy, -best.val_xent):
                    best = FitResult(snapshot(model), step, accuracy, xent, score=(accuracy, -xent))
            if plateau and step > steps - config.average_last * config.eval_every:
                recent.append(snapshot(model))
            if on_eval is not None:
                model.eval()
                with torch.no_grad():
                    point.update(on_eval(step, model) or {})
                model.train()
            curve.append(point)
        if bar is not None:
            bar.update(1)
    best.curve = curve
    if plateau and val is not None:
        best.score = plateau_score(curve)
        best.val_accuracy = best.score[0]
        best.val_xent = statistics.fmean(p["val_xent"] for p in curve[len(curve) // 2 :])
    if plateau or val is None:
        best.state = average_states(list(recent)) if plateau else snapshot(model)
        best.best_step = steps
    return best


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def train_student(
    comparative: ComparativeSet,
    config: StudentConfig,
    device: torch.device,
    progress: bool = True,
    on_eval: EvalHook | None = None,
) -> TrainOutcome:
    """Select the candidate on validation, then (with refit) retrain it on all queried samples."""
    torch.use_deterministic_algorithms(device.type == "cpu")
    data = TrainingData.from_set(comparative, device)
    labelled = data.labels is not None
    METHODS.get(config.method)  # unknown method: error lists the registered ones
    augment = resolve_augment(config.augment, data.sample_shape, data.is_image)
    teacher_var = float(data.teacher.var())
    candidates = candidate_grid(config)
    train_rows, val_rows = split_rows(len(data.x), config.val_fraction, config.seed)

    def new_model_and_method(candidate: Candidate) -> tuple[torch.nn.Module, Method]:
        seed_everything(config.seed)
        method = build_method(config.method, data.num_classes, teacher_var, labelled, **candidate.method_args)
        model = build_student(
            config.arch, data.sample_shape, data.num_classes, data.norm_mean, data.norm_std, dict(config.arch_args)
        ).to(device)
        return model, method

    probe_model, probe_method = new_model_and_method(candidates[0])
    threads = resolve_threads(config.threads, forward_flops(probe_model, data.sample_shape))
    if device.type == "cpu":
        set_torch_threads(threads)
    if probe_method.uses_labels and not labelled:
        log.warning(
            "%s: the data has no labels (or data.use_labels is off): every label term is off%s",
            config.method,
            "; ce trains on the teacher's argmax" if config.method == "ce" else "",
        )
    total = len(candidates) * config.steps + (config.steps if config.refit else 0)
    bar = tqdm(total=total, desc=f"train {config.method}", unit="step", disable=not progress, dynamic_ncols=True)

    def fit_candidate(
        candidate: Candidate, rows: np.ndarray, val: np.ndarray | None, steps: int, hook: EvalHook | None = None
    ) -> tuple[torch.nn.Module, FitResult]:
        """A fresh model trained with `candidate` on `rows`: the model and its fit."""
        model, method = new_model_and_method(candidate)
        result = fit(data, method, model, rows, val, candidate.lr, steps, config, augment, config.seed, bar, hook)
        return model, result

    selection, best, best_candidate = [], None, None
    try:
        for candidate in candidates:
            _, result = fit_candidate(candidate, train_rows, val_rows, config.steps, on_eval)
            selection.append(
                {
                    "lr": candidate.lr,
                    **candidate.method_args,
                    "val_accuracy": result.val_accuracy,
                    "val_xent": result.val_xent,
                    "score": list(result.score),
                    "best_step": result.best_step,
                }
            )
            if best is None or result.score > best.score:
                best, best_candidate = result, candidate
        assert best is not None and best_candidate is not None  # candidates is never empty
        if config.refit:
            bar.total = len(candidates) * config.steps + best.best_step
            model, refit = fit_candidate(best_candidate, np.arange(len(data.x)), None, best.best_step)
            model.load_state_dict(refit.state)
        else:
            model, _ = new_model_and_method(best_candidate)
            model.load_state_dict(best.state)
    finally:
        bar.close()
    model.eval()
    return TrainOutcome(
        model,
        best_candidate,
        best.val_accuracy,
        best.best_step,
        best.best_step,  # the steps run: the refit's, or the chosen fit's
        best.curve,
        selection,
        str(device),
        f"{augment[0]}({augment[1]}px)" if augment[0] != "none" else "none",
        threads,
        config.precision,
    )
