import dataclasses

import numpy as np
import pytest
import torch

from ckd.comparative import build_groups
from ckd.config import StudentConfig
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
    arrays = {"x": x, "teacher": teacher, "positives": pos, "negatives": neg, "norm_mean": mean, "norm_std": std,
              "class_names": np.array(["a", "b", "c"]), "is_image": np.asarray(False)}
    if labelled:
        arrays["labels"] = teacher.argmax(1)
    return arrays


CONFIG = StudentConfig(steps=150, eval_every=50, lr=(0.01,), batch_size=16, arch_args={"hidden": [16]})


@pytest.mark.parametrize("method", ["ce", "kd", "ckd", "ckd_paper", "ckd_kd", "kd_mse", "mixup", "rkd", "dist"])
def test_every_method_trains_and_beats_chance(method):
    outcome = train_student(toy_arrays(), dataclasses.replace(CONFIG, method=method), torch.device("cpu"),
                            progress=False)
    assert outcome.val_accuracy > 0.5  # three classes: chance is 1/3
    assert outcome.curve and outcome.curve[-1]["step"] == CONFIG.steps


def test_training_is_deterministic_on_cpu():
    config = dataclasses.replace(CONFIG, method="ckd")
    a = train_student(toy_arrays(), config, torch.device("cpu"), progress=False).model.state_dict()
    b = train_student(toy_arrays(), config, torch.device("cpu"), progress=False).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_selection_picks_the_best_validation_candidate_and_teacher_only_runs():
    config = dataclasses.replace(CONFIG, method="kd", lr=(1e-6, 0.01), method_args={"temperature": [2.0, 4.0]})
    assert len(candidate_grid(config)) == 4
    outcome = train_student(toy_arrays(labelled=False), config, torch.device("cpu"), progress=False)
    assert outcome.chosen.lr == 0.01 and len(outcome.selection) == 4
    assert outcome.val_accuracy == max(row["val_accuracy"] for row in outcome.selection)


def test_validation_members_never_in_training_groups():
    arrays = toy_arrays()
    data = TrainingData.from_arrays(arrays, torch.device("cpu"))
    train_rows, val_rows = split_rows(60, 0.2, seed=0)
    allowed = groups_within(data, train_rows)
    members = torch.cat([data.positives[allowed], data.negatives[allowed]], 1).unique().numpy()
    assert not set(members) & set(val_rows) and len(allowed) > 0


def test_unknown_method_lists_registered():
    with pytest.raises(ConfigError, match="student.method: unknown method 'fancy'; registered: ce, ckd"):
        train_student(toy_arrays(), dataclasses.replace(CONFIG, method="fancy"), torch.device("cpu"), progress=False)


def test_unlabelled_consistency_masks_unconfident_answers():
    from ckd.train import unlabelled_consistency

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
    pool = torch.rand(32, 6, 6)
    generator = torch.Generator().manual_seed(0)
    assert unlabelled_consistency(model, pool, 16, ("shift", 1), 0.999, generator).item() == 0.0  # none confident
    loss = unlabelled_consistency(model, pool, 16, ("shift", 1), 0.0, generator)
    assert loss.item() > 0 and loss.requires_grad


def test_unlabelled_pool_is_used_only_with_augmentation():
    arrays = toy_arrays()
    arrays["unlabelled"] = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    config = dataclasses.replace(CONFIG, method="kd", unlabelled_weight=1.0)
    with_pool = train_student(arrays, config, torch.device("cpu"), progress=False).model.state_dict()
    arrays.pop("unlabelled")
    without = train_student(arrays, config, torch.device("cpu"), progress=False).model.state_dict()
    assert all(torch.equal(with_pool[k], without[k]) for k in with_pool)  # tables: no augmentation, no pool term


def test_unlabelled_pool_changes_training_on_images():
    rng = np.random.default_rng(0)
    x = rng.random((40, 16, 16)).astype(np.float32)
    teacher = (x.reshape(40, -1) @ rng.normal(size=(256, 3))).astype(np.float32)
    pos, neg = build_groups(40, 1, 500, seed=0)
    mean, std = input_statistics(x)
    arrays = {"x": x, "teacher": teacher, "positives": pos, "negatives": neg, "norm_mean": mean, "norm_std": std,
              "class_names": np.array(["a", "b", "c"]), "is_image": np.asarray(True)}
    config = dataclasses.replace(CONFIG, method="kd", steps=30, eval_every=10, unlabelled_weight=1.0,
                                 unlabelled_threshold=0.0)
    without = train_student(arrays, config, torch.device("cpu"), progress=False).model.state_dict()
    arrays["unlabelled"] = rng.random((30, 16, 16)).astype(np.float32)
    with_pool = train_student(arrays, config, torch.device("cpu"), progress=False).model.state_dict()
    assert not all(torch.equal(with_pool[k], without[k]) for k in with_pool)


def test_threads_are_applied_and_reported():
    before = torch.get_num_threads()
    try:
        outcome = train_student(toy_arrays(), dataclasses.replace(CONFIG, method="kd", steps=20, eval_every=10,
                                                                  threads=1), torch.device("cpu"), progress=False)
        assert outcome.threads == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bf16_autocast_trains_and_changes_the_arithmetic():
    """bf16 autocast (meant for CUDA; the CPU supports it too, so the path is tested everywhere)."""
    fp32 = train_student(toy_arrays(), dataclasses.replace(CONFIG, method="ckd"), torch.device("cpu"), progress=False)
    bf16 = train_student(toy_arrays(), dataclasses.replace(CONFIG, method="ckd", precision="bf16"),
                         torch.device("cpu"), progress=False)
    assert bf16.precision == "bf16" and bf16.val_accuracy > 0.5  # three classes: chance is 1/3
    assert all(v.dtype == torch.float32 for v in bf16.model.state_dict().values())  # master weights stay fp32
    a, b = fp32.model.state_dict(), bf16.model.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)
