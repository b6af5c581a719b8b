"""The train stage on CUDA, where a CUDA device is present; elsewhere skipped, with the reason shown in
the test summary (`-rs` in pytest's addopts)."""

import numpy as np
import pytest
import torch

from ckd.comparative import ComparativeSet, build_groups
from ckd.config import section_from_dict
from ckd.data.arrays import input_statistics

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device here: the train stage on CUDA runs only where a GPU is present",
)


def image_arrays(n=200, pool=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n + pool)
    prototypes = rng.random((3, 16, 16)).astype(np.float32) * 255
    x = np.clip(prototypes[labels] + rng.normal(0, 30, size=(n + pool, 16, 16)), 0, 255).astype(np.float32)
    teacher = np.eye(3, dtype=np.float32)[labels[:n]] * 6
    positives, negatives = build_groups(n, 1, 2000, seed=0)
    mean, std = input_statistics(x)
    return ComparativeSet(
        ids=np.arange(n),
        x=x[:n],
        teacher=teacher,
        positives=positives,
        negatives=negatives,
        norm_mean=mean,
        norm_std=std,
        class_names=("a", "b", "c"),
        is_image=True,
        labels=labels[:n],
        unlabelled=x[n:],
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_stage_on_cuda(tmp_path, precision):
    from ckd.stages.train import train
    from ckd.students.checkpoint import StudentCheckpoint

    image_arrays().save(tmp_path / "comparative.npz")
    config = section_from_dict(
        "student",
        {"steps": 200, "eval_every": 50, "lr": [0.003], "batch_size": 32, "device": "auto", "precision": precision,
         "unlabelled_weight": 1.0},
    )  # fmt: skip
    checkpoint, _, metrics = train(config, ComparativeSet.load(tmp_path / "comparative.npz"), progress=False)
    assert metrics["device"].startswith("cuda") and metrics["precision"] == precision
    assert metrics["val_accuracy"] > 0.5  # three classes: chance is 1/3
    checkpoint.save(tmp_path / "student.pt")
    state = StudentCheckpoint.load(tmp_path / "student.pt").state_dict
    assert all(v.device.type == "cpu" for v in state.values())  # the checkpoint is portable


def test_no_per_step_host_to_device_copies():
    """The data path gathers batches from tensors already on the GPU: more steps, no more HtoD copies."""
    from torch.profiler import ProfilerActivity, profile

    from ckd.methods import build_method
    from ckd.students import build_student
    from ckd.train import TrainingData, fit

    arrays = image_arrays()
    device = torch.device("cuda")
    data = TrainingData.from_set(arrays, device)

    def copies(steps: int) -> int:
        config = section_from_dict("student", {"steps": steps, "eval_every": steps, "batch_size": 32})
        model = build_student("mlp", (16, 16), 3, arrays.norm_mean, arrays.norm_std, {"hidden": [64]}).to(device)
        method = build_method("ckd", 3, float(data.teacher.var()), True)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fit(data, method, model, np.arange(150), np.arange(150, 200), 0.003, steps, config, ("shift", 1), 0)
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if "HtoD" in e.name)

    short, long = copies(20), copies(80)
    assert long - short <= 2, f"{long - short} more host-to-device copies for 60 more steps"


def test_auto_device_picks_cuda():
    from ckd.runtime import torch_device

    assert torch_device("auto").type == "cuda" and torch_device("cuda").type == "cuda"
