"""Threads and sessions: no more threads than the process may use, one for small students."""

import os

import pytest
import torch

from ckd import runtime
from ckd.runtime import SMALL_STUDENT_PARAMETERS, available_cores, onnx_session, resolve_threads, set_torch_threads
from tests.conftest import linear_onnx_teacher


def test_available_cores_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert available_cores() == 3


def test_auto_threads_one_for_small_students_else_the_cores(monkeypatch):
    monkeypatch.setattr(runtime, "available_cores", lambda: 6)
    assert resolve_threads("auto", SMALL_STUDENT_PARAMETERS - 1) == 1
    assert resolve_threads("auto", SMALL_STUDENT_PARAMETERS) == 6
    assert resolve_threads(3, 10) == 3  # an explicit count is taken as given


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
