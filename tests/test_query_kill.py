"""SIGKILL the `query` stage mid-run, re-run it: the teacher never computes more than the budget, and
every answered sample is stored exactly once, in agreement with the store."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import yaml

from ckd.data import read_arrays, write_arrays
from ckd.store import open_store
from tests.conftest import PROJECT, linear_onnx_teacher
from tests.helpers.counting import computed_samples


def query_command(workdir):
    return [
        sys.executable,
        "-m",
        "ckd.stages.query",
        "--params",
        str(workdir / "params.yaml"),
        "--pool",
        str(workdir / "pool.npz"),
        "--selected",
        str(workdir / "selected.npz"),
        "--out",
        str(workdir / "queried.npz"),
        "--metrics",
        str(workdir / "query.json"),
    ]


def metrics_teacher(store):
    (summary,) = store.summaries()
    return summary.teacher


def write_params(workdir, delay_s, budget):
    params = {
        "teacher": {
            "kind": "counting",
            "model": str(workdir / "teacher.onnx"),
            "budget": budget,
            "batch_size": 10,
            "store": str(workdir / "store"),
            "count_file": str(workdir / "count.log"),
            "delay_s": delay_s,
        }
    }
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def test_sigkill_then_rerun_never_overspends(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 17, size=(200, 8, 8)).astype(np.float32)
    ids = np.arange(200)
    write_arrays(
        tmp_path / "pool.npz",
        ids=ids,
        x=x,
        class_names=np.asarray([str(c) for c in range(10)]),
        is_image=np.asarray(True),
    )
    write_arrays(tmp_path / "selected.npz", ids=ids[:60])
    linear_onnx_teacher(tmp_path / "teacher.onnx", input_shape=[1, 8, 8])
    budget = 70
    write_params(tmp_path, delay_s=0.4, budget=budget)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    process = subprocess.Popen(
        query_command(tmp_path), cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 600  # a guard against a hang, not a speed check
    while (
        not (tmp_path / "count.log").exists() or len((tmp_path / "count.log").read_text().splitlines()) < 3
    ) and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = computed_samples(tmp_path / "count.log")
    assert 30 <= killed_at < 60, "the kill must land mid-run"

    write_params(tmp_path, delay_s=0.0, budget=budget)
    rerun = subprocess.run(query_command(tmp_path), cwd=PROJECT, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr

    assert computed_samples(tmp_path / "count.log") <= budget
    metrics = json.loads((tmp_path / "query.json").read_text())
    assert metrics["calls_spent_total"] <= budget
    assert metrics["unanswered"] == 0 and metrics["answered_selected"] == 60
    # every answered sample stored exactly once, and the store's batches agree with its answers
    store = open_store(str(tmp_path / "store"))
    summary = store.summary(metrics_teacher(store))
    assert summary.answered == 60 and summary.spent == summary.answered + summary.lost == metrics["calls_spent_total"]
    # counted from the reservation on: what the teacher computed never exceeds what the store counts
    assert computed_samples(tmp_path / "count.log") <= metrics["calls_spent_total"]
    queried = read_arrays(tmp_path / "queried.npz")
    assert sorted(queried["ids"].tolist()) == list(range(60))


def test_budget_spent_on_other_inputs_fails_clearly(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 17, size=(100, 8, 8)).astype(np.float32)
    write_arrays(
        tmp_path / "pool.npz",
        ids=np.arange(100),
        x=x,
        class_names=np.asarray([str(c) for c in range(10)]),
        is_image=np.asarray(True),
    )
    linear_onnx_teacher(tmp_path / "teacher.onnx", input_shape=[1, 8, 8])
    write_params(tmp_path, delay_s=0.0, budget=30)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    write_arrays(tmp_path / "selected.npz", ids=np.arange(30))
    assert subprocess.run(query_command(tmp_path), cwd=PROJECT, env=env).returncode == 0
    write_arrays(tmp_path / "selected.npz", ids=np.arange(20, 50))  # a new selection, the same budget
    rerun = subprocess.run(query_command(tmp_path), cwd=PROJECT, env=env, capture_output=True, text=True)
    assert rerun.returncode == 2
    assert (
        rerun.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "ckd query: error: teacher.min_answered=0.5: only 10 of 30 selected samples have an answer; "
            "teacher.budget=30 is spent (30 counted in the store"
        )
    )
    assert computed_samples(tmp_path / "count.log") == 30
