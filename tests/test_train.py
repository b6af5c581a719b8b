import numpy as np
import pytest
import torch

from ckd.comparative import ComparativeSet, build_groups
from ckd.config import section_from_dict
from ckd.data.arrays import input_statistics
from ckd.errors import ConfigError
from ckd.train import TrainingData, candidate_grid, groups_within, split_rows, train_student


def toy_arrays(n=60, labelled=True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    w = rng.normal(size=(6, 3)).astype(np.float32)
    teacher = (x @ w * 3).astype(np.float32)
    pos, neg = build_groups(n, 1, 2000, seed=0)
    mean, std = input_statistics(x)
    return ComparativeSet(
        ids=np.arange(n),
        x=x,
        teacher=teacher,
        positives=pos,
        negatives=neg,
        norm_mean=mean,
        norm_std=std,
        class_names=("a", "b", "c"),
        is_image=False,
        labels=teacher.argmax(1) if labelled else None,
    )


BASE = {"steps": 150, "eval_every": 50, "lr": [0.01], "batch_size": 16, "arch_args": {"hidden": [16]}}


def config(**changes):
    return section_from_dict("student", {**BASE, **changes})


CONFIG = config()


@pytest.mark.parametrize("method", ["ce", "kd", "ckd", "ckd_paper", "ckd_kd", "kd_mse", "mixup", "rkd", "dist"])
def test_every_method_trains_and_beats_chance(method):
    outcome = train_student(toy_arrays(), config(method=method), torch.device("cpu"), progress=False)
    assert outcome.val_accuracy > 0.5  # three classes: chance is 1/3
    assert outcome.curve and outcome.curve[-1]["step"] == CONFIG.steps


def test_training_is_deterministic_on_cpu():
    ckd = config(method="ckd")
    a = train_student(toy_arrays(), ckd, torch.device("cpu"), progress=False).model.state_dict()
    b = train_student(toy_arrays(), ckd, torch.device("cpu"), progress=False).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_selection_picks_the_best_validation_candidate_and_teacher_only_runs():
    kd = config(method="kd", lr=[1e-6, 0.01], method_args={"temperature": [2.0, 4.0]})
    assert len(candidate_grid(kd)) == 4
    outcome = train_student(toy_arrays(labelled=False), kd, torch.device("cpu"), progress=False)
    assert outcome.chosen.lr == 0.01 and len(outcome.selection) == 4
    assert outcome.val_accuracy == max(row["val_accuracy"] for row in outcome.selection)


def test_validation_members_never_in_training_groups():
    data = TrainingData.from_set(toy_arrays(), torch.device("cpu"))
    train_rows, val_rows = split_rows(60, 0.2, seed=0)
    allowed = groups_within(data, train_rows)
    members = torch.cat([data.positives[allowed], data.negatives[allowed]], 1).unique().numpy()
    assert not set(members) & set(val_rows) and len(allowed) > 0


def test_unknown_method_lists_registered():
    with pytest.raises(ConfigError, match="student.method: must be a registered method: ce, ckd.*, got 'fancy'"):
        config(method="fancy")


def test_unlabelled_consistency_masks_unconfident_answers():
    from ckd.train import unlabelled_consistency

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
    pool = torch.rand(32, 6, 6)
    generator = torch.Generator().manual_seed(0)
    assert unlabelled_consistency(model, pool, 16, ("shift", 1), 0.999, generator).item() == 0.0  # none confident
    loss = unlabelled_consistency(model, pool, 16, ("shift", 1), 0.0, generator)
    assert loss.item() > 0 and loss.requires_grad


def tiny_images(n=40, side=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, side, side)).astype(np.float32)
    teacher = (x.reshape(n, -1) @ rng.normal(size=(side * side, 3))).astype(np.float32)
    pos, neg = build_groups(n, 1, 500, seed=0)
    mean, std = input_statistics(x)
    return ComparativeSet(
        ids=np.arange(n),
        x=x,
        teacher=teacher,
        positives=pos,
        negatives=neg,
        norm_mean=mean,
        norm_std=std,
        class_names=("a", "b", "c"),
        is_image=True,
    )


def test_unlabelled_pool_on_images_is_used_only_with_augmentation():
    data = tiny_images()  # 8x8: `auto` gives no augmentation (ckd.augment.resolve_augment)
    data.unlabelled = np.random.default_rng(1).random((30, 8, 8)).astype(np.float32)
    kd = config(method="kd", steps=30, eval_every=10, unlabelled_weight=1.0, unlabelled_threshold=0.0)
    with_pool = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    data.unlabelled = None
    without = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    # allclose, not equal: the extra (unused) tensor moves allocations, and CPU kernels may round in another
    # order for another alignment (1e-7 here; the pool term moves weights by 1e-2)
    assert all(torch.allclose(with_pool[k], without[k], atol=1e-5) for k in with_pool)


def test_unlabelled_pool_changes_training_on_tables_without_augmentation():
    """Tables: the pool term is consistency under feature corruption, on without `student.augment`."""
    data = toy_arrays()
    kd = config(method="kd", unlabelled_weight=1.0, unlabelled_threshold=0.0, augment="none")
    without = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    data.unlabelled = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    with_pool = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    assert not all(torch.allclose(with_pool[k], without[k], atol=1e-4) for k in with_pool)
    off = train_student(data, config(method="kd", unlabelled_weight=0.0), torch.device("cpu"), progress=False)
    assert all(torch.allclose(off.model.state_dict()[k], without[k], atol=1e-5) for k in without)


def test_table_consistency_is_cross_entropy_of_corrupted_rows_against_confident_clean_answers():
    from ckd.augment import corrupt_features
    from ckd.train import POOL_CORRUPTION, unlabelled_consistency_features

    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    pool = torch.randn(50, 6) * 3
    norm = (pool.mean(0), pool.std(0))
    loss = unlabelled_consistency_features(model, pool, 20, norm, 0.6, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)  # the same draws, by hand
    inputs = pool[torch.randint(50, (20,), generator=generator)]
    confidence, pseudo = torch.softmax(model(inputs), -1).max(-1)
    strong = corrupt_features(inputs, norm[0], norm[1], POOL_CORRUPTION, generator)
    expected = (torch.nn.functional.cross_entropy(model(strong), pseudo, reduction="none") * (confidence >= 0.6)).mean()
    assert 0 < (confidence >= 0.6).sum() < 20  # some rows masked, some not: the mask is tested
    assert torch.allclose(loss, expected) and loss.requires_grad
    assert unlabelled_consistency_features(model, pool, 20, norm, 0.9999, generator).item() == 0.0


def test_neighbour_targets_are_the_affinity_weighted_teacher_answers_of_the_nearest_queried_rows():
    from ckd.train import neighbour_targets

    queried = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    scores = torch.tensor([[4.0, 0.0], [3.0, 0.0], [0.0, 5.0], [0.0, 0.0]])
    pool = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0]])
    norm = (torch.zeros(2), torch.ones(2))
    targets, weights = neighbour_targets(queried, scores, pool, norm, k=2)
    teacher = torch.softmax(scores, -1)
    # pool row 0: neighbours 0 (cos 1) and 1 (cos 0.994); affinity cos^3
    a = torch.tensor([1.0, 0.9 / (0.82**0.5)]) ** 3
    assert torch.allclose(targets[0], (a[:, None] * teacher[[0, 1]]).sum(0) / a.sum(), atol=1e-5)
    # pool row 1: nearest is row 2 (cos 1); its second neighbour (row 1, cos 0.11) counts 0.11^3 as much
    assert targets[1].argmax() == 1 and targets[1, 1] > 0.99 * teacher[2, 1]
    # pool row 2: neighbours at cos 0.71 (row 3, uniform answer) and a negative cosine (clamped to 0, ignored)
    assert torch.allclose(targets[2], torch.tensor([0.5, 0.5]), atol=1e-4)
    assert torch.allclose(targets.sum(-1), torch.ones(3))
    # weight: 1 - entropy / log C: near 1 for a confident target, 0 for a uniform one
    assert weights[1] > weights[0] > 0.5 and abs(weights[2].item()) < 1e-4


def test_neighbour_pool_term_changes_training_and_its_controls_are_the_other_targets_and_no_pool():
    data = toy_arrays()
    data.unlabelled = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    cpu = torch.device("cpu")
    common = {"method": "kd", "unlabelled_weight": 1.0, "unlabelled_threshold": 0.0, "augment": "none"}
    prop = train_student(data, config(**common, unlabelled_targets="neighbours"), cpu, progress=False)
    again = train_student(data, config(**common, unlabelled_targets="neighbours"), cpu, progress=False)
    self_ = train_student(data, config(**common), cpu, progress=False)
    off = train_student(data, config(**{**common, "unlabelled_weight": 0.0}), cpu, progress=False)
    state = prop.model.state_dict()
    assert all(torch.allclose(state[k], again.model.state_dict()[k], atol=1e-6) for k in state)  # repeatable
    for other in (self_, off):
        assert not all(torch.allclose(state[k], other.model.state_dict()[k], atol=1e-4) for k in state)


def test_unlabelled_pool_changes_training_on_images():
    data = tiny_images(side=16)
    kd = config(method="kd", steps=30, eval_every=10, unlabelled_weight=1.0, unlabelled_threshold=0.0)
    without = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    data.unlabelled = np.random.default_rng(0).random((30, 16, 16)).astype(np.float32)
    with_pool = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    assert not all(torch.equal(with_pool[k], without[k]) for k in with_pool)


def test_threads_are_applied_and_reported():
    before = torch.get_num_threads()
    try:
        outcome = train_student(
            toy_arrays(), config(method="kd", steps=20, eval_every=10, threads=1), torch.device("cpu"), progress=False
        )
        assert outcome.threads == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bf16_autocast_trains_and_changes_the_arithmetic():
    """bf16 autocast (meant for CUDA; the CPU supports it too, so the path is tested everywhere)."""
    fp32 = train_student(toy_arrays(), config(method="ckd"), torch.device("cpu"), progress=False)
    bf16 = train_student(toy_arrays(), config(method="ckd", precision="bf16"), torch.device("cpu"), progress=False)
    assert bf16.precision == "bf16" and bf16.val_accuracy > 0.5  # three classes: chance is 1/3
    assert all(v.dtype == torch.float32 for v in bf16.model.state_dict().values())  # master weights stay fp32
    a, b = fp32.model.state_dict(), bf16.model.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)


def _curve(accuracies, kls, xents):
    return [
        {"step": 100 * (i + 1), "val_accuracy": a, "val_kl": k, "val_xent": x}
        for i, (a, k, x) in enumerate(zip(accuracies, kls, xents))
    ]


def test_plateau_breaks_an_accuracy_tie_by_the_settled_kl_not_by_a_lucky_early_step():
    from ckd.train import plateau_score

    # 20 validation samples: accuracy moves in steps of 0.05. `early` hits 0.80 at step 100 with the lowest
    # cross-entropy of all points (what the best_step rule picks, then refits for 100 steps only); both settle
    # at the same mean accuracy over the last half, where `settled` is closer to the teacher (lower KL).
    early = _curve([0.80, 0.75, 0.80, 0.75], [0.30, 0.40, 0.45, 0.50], [0.90, 1.00, 1.20, 1.30])
    settled = _curve([0.60, 0.70, 0.75, 0.80], [0.60, 0.30, 0.20, 0.15], [2.00, 1.40, 1.25, 1.15])
    assert (
        max(
            (p["val_accuracy"], -p["val_xent"], name) for name, c in (("early", early), ("settled", settled)) for p in c
        )[2]
        == "early"
    )
    assert plateau_score(early)[0] == plateau_score(settled)[0]  # the tie
    assert plateau_score(settled) > plateau_score(early)
    # a clear accuracy lead still wins over a lower KL
    assert plateau_score(_curve([0.5, 0.5, 0.9, 0.9], [9, 9, 9, 9], [9] * 4)) > plateau_score(settled)


def test_plateau_selection_keeps_the_best_scored_candidate_and_refits_the_full_steps():
    config_ = config(method="kd", lr=[0.1, 0.05], steps=200, eval_every=20, average_last=3)
    outcome = train_student(toy_arrays(), config_, torch.device("cpu"), progress=False)
    winner = max(outcome.selection, key=lambda row: row["score"])
    assert outcome.chosen.lr == winner["lr"] and outcome.val_accuracy == winner["val_accuracy"]
    assert outcome.best_step == outcome.steps_run == config_.steps  # no early step is picked for the refit


def test_fit_returns_the_average_of_the_last_checkpoints():
    from ckd.augment import resolve_augment
    from ckd.methods import build_method
    from ckd.students import build_student
    from ckd.train import fit

    data = TrainingData.from_set(toy_arrays(), torch.device("cpu"))
    config_ = config(method="kd", steps=100, eval_every=10, average_last=4)
    model = build_student("mlp", (6,), 3, data.norm_mean, data.norm_std, {"hidden": [8]})
    seen = []
    result = fit(
        data,
        build_method("kd", 3, 1.0, True),
        model,
        np.arange(60),
        None,
        0.01,
        config_.steps,
        config_,
        resolve_augment("none", (6,), False),
        0,
        on_eval=lambda step, m: seen.append({k: v.clone() for k, v in m.state_dict().items()}),
    )
    assert len(seen) == 10
    for key in result.state:
        assert torch.allclose(result.state[key], torch.stack([s[key] for s in seen[-4:]]).mean(0))
    assert not torch.allclose(result.state["body.1.weight"], seen[-1]["body.1.weight"])


def test_ckd_trains_on_two_plus_one_groups_and_differs_from_pairs():
    data = toy_arrays()
    pairs = train_student(data, config(method="ckd"), torch.device("cpu"), progress=False)
    data.positives, data.negatives = build_groups(len(data.x), 2, 2000, seed=0, negatives=1)
    uneven = train_student(data, config(method="ckd"), torch.device("cpu"), progress=False)
    assert uneven.val_accuracy > 0.5  # three classes: chance is 1/3
    a, b = pairs.model.state_dict(), uneven.model.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_resnet_student_takes_raw_images_and_trains_with_its_classifier_loop():
    from ckd.students import build_student
    from ckd.students.resnet import predict_logits, train_classifier

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=64)
    x = rng.integers(0, 40, size=(64, 3, 8, 8)).astype(np.uint8)
    x[y == 1, 0] += 150  # class 1: a bright red channel
    mean, std = input_statistics(x.astype(np.float32))
    torch.manual_seed(0)
    model = build_student("resnet", (3, 8, 8), 2, mean, std, {"channels": [4, 8], "blocks": 1})
    images, labels = torch.as_tensor(x), torch.as_tensor(y)
    train_classifier(model, images, labels, epochs=8, batch_size=16, lr=0.05, crop=1, precision="fp32")
    logits = predict_logits(model, images)
    assert logits.shape == (64, 2)
    assert (logits.argmax(1) == y).mean() >= 0.9
