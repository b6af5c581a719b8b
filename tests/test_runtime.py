"""Threads and sessions: no more threads than the process may use, one for small students."""

import os

import numpy as np
import pytest
import torch

from ckd import runtime
from ckd.runtime import (
    SMALL_STUDENT_FLOPS,
    available_cores,
    forward_flops,
    onnx_session,
    resolve_threads,
    set_torch_threads,
)
from ckd.students import build_student
from tests.conftest import linear_onnx_teacher


def test_available_cores_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert available_cores() == 3


def test_auto_threads_one_for_small_students_else_the_cores(monkeypatch):
    monkeypatch.setattr(runtime, "available_cores", lambda: 6)
    assert resolve_threads("auto", SMALL_STUDENT_FLOPS - 1) == 1
    assert resolve_threads("auto", SMALL_STUDENT_FLOPS) == 6
    assert resolve_threads(3, 10) == 3  # an explicit count is taken as given


def test_a_conv_student_with_few_parameters_gets_the_cores_an_mlp_of_as_many_gets_one(monkeypatch):
    """The CIFAR-10 conv student (94.5 k parameters) does ~100 times the work of an MLP of as many parameters:
    threads follow the work of a forward pass, not the parameter count."""
    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    mean, std = np.zeros(1, np.float32), np.ones(1, np.float32)
    conv = build_student("cnn", (3, 32, 32), 10, mean, std, {"channels": [32, 64, 128]})
    mlp = build_student("mlp", (784,), 10, mean, std, {"hidden": [120]})
    assert sum(p.numel() for p in conv.parameters()) < sum(p.numel() for p in mlp.parameters())
    assert forward_flops(conv, (3, 32, 32)) > 100 * forward_flops(mlp, (784,))
    assert resolve_threads("auto", forward_flops(conv, (3, 32, 32))) == 2
    assert resolve_threads("auto", forward_flops(mlp, (784,))) == 1


def test_set_torch_threads_applies_to_torch():
    before = torch.get_num_threads()
    try:
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_onnx_session_threads_and_no_spinning(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    path = linear_onnx_teacher(tmp_path / "t.onnx")
    options = onnx_session(path).get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert onnx_session(path, threads=1).get_session_options().intra_op_num_threads == 1


def test_auto_device_picks_cuda_where_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.torch_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.torch_device("auto").type == "cpu"
    with pytest.raises(Exception, match="student.device"):
        runtime.torch_device("cuda")
