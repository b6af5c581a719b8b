import numpy as np
import pytest
import torch

from ckd.comparative import ComparativeSet, build_groups
from ckd.config import section_from_dict
from ckd.errors import ConfigError
from ckd.students.base import input_statistics
from ckd.train import TrainingData, candidate_grid, groups_within, split_rows, train_student


def toy_arrays(n=60, labelled=True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    w = rng.normal(size=(6, 3)).astype(np.float32)
    teacher = (x @ w * 3).astype(np.float32)
    pos, neg = build_groups(n, 1, 2000, seed=0)
    mean, std = input_statistics(x)
    return ComparativeSet(ids=np.arange(n), x=x, teacher=teacher, positives=pos, negatives=neg, norm_mean=mean,
                          norm_std=std, class_names=("a", "b", "c"), is_image=False,
                          labels=teacher.argmax(1) if labelled else None)


BASE = {"steps": 150, "eval_every": 50, "lr": [0.01], "batch_size": 16, "arch_args": {"hidden": [16]}}


def config(**changes):
    return section_from_dict("student", {**BASE, **changes})


CONFIG = config()


@pytest.mark.parametrize("method", ["ce", "kd", "ckd", "ckd_paper", "ckd_kd", "kd_mse", "mixup", "rkd", "dist"])
def test_every_method_trains_and_beats_chance(method):
    outcome = train_student(toy_arrays(), config(method=method), torch.device("cpu"),
                            progress=False)
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


def test_unlabelled_pool_is_used_only_with_augmentation():
    data = toy_arrays()
    data.unlabelled = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    kd = config(method="kd", unlabelled_weight=1.0)
    with_pool = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    data.unlabelled = None
    without = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    assert all(torch.equal(with_pool[k], without[k]) for k in with_pool)  # tables: no augmentation, no pool term


def test_unlabelled_pool_changes_training_on_images():
    rng = np.random.default_rng(0)
    x = rng.random((40, 16, 16)).astype(np.float32)
    teacher = (x.reshape(40, -1) @ rng.normal(size=(256, 3))).astype(np.float32)
    pos, neg = build_groups(40, 1, 500, seed=0)
    mean, std = input_statistics(x)
    data = ComparativeSet(ids=np.arange(40), x=x, teacher=teacher, positives=pos, negatives=neg, norm_mean=mean,
                          norm_std=std, class_names=("a", "b", "c"), is_image=True)
    kd = config(method="kd", steps=30, eval_every=10, unlabelled_weight=1.0, unlabelled_threshold=0.0)
    without = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    data.unlabelled = rng.random((30, 16, 16)).astype(np.float32)
    with_pool = train_student(data, kd, torch.device("cpu"), progress=False).model.state_dict()
    assert not all(torch.equal(with_pool[k], without[k]) for k in with_pool)
