"""Several query processes (clones, experiments, teammates) on one store at once: never more computed than
the budget, nobody blocks for ever, and an input one run has in flight is waited for by the others."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from ckd.data import write_arrays
from tests.conftest import PROJECT, linear_onnx_teacher
from tests.helpers.counting import computed_samples, computing_pids

BUDGET = 100


def make_clone(root, store, count_file, teacher, seed=0):
    """A working copy's inputs: the same pool and selection (same seed), its own params, one shared store."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, size=(150, 8, 8)).astype(np.float32)
    write_arrays(
        root / "pool.npz",
        ids=np.arange(150),
        x=x,
        class_names=np.asarray([str(c) for c in range(10)]),
        is_image=np.asarray(True),
    )
    write_arrays(root / "selected.npz", ids=np.arange(BUDGET))
    params = {
        "teacher": {
            "kind": "counting",
            "model": str(teacher),
            "budget": BUDGET,
            "batch_size": 10,
            "store": store,
            "count_file": str(count_file),
            "delay_s": 0.3,
        }
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def start(root):
    command = [
        sys.executable,
        "-m",
        "ckd.stages.query",
        "--params",
        str(root / "params.yaml"),
        "--pool",
        str(root / "pool.npz"),
        "--selected",
        str(root / "selected.npz"),
        "--out",
        str(root / "queried.npz"),
        "--metrics",
        str(root / "query.json"),
    ]
    return subprocess.Popen(
        command,
        cwd=PROJECT,
        env={**os.environ, "TQDM_DISABLE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_clones_at_once_on_one_postgresql_store(tmp_path, pg_store_url):
    teacher = linear_onnx_teacher(tmp_path / "teacher.onnx", input_shape=[1, 8, 8])
    count = tmp_path / "count.log"
    clones = [make_clone(tmp_path / f"clone{n}", pg_store_url, count, teacher) for n in range(2)]
    processes = [start(root) for root in clones]
    for process in processes:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
    assert computed_samples(count) <= BUDGET
    for root in clones:
        metrics = json.loads((root / "query.json").read_text())
        assert metrics["answered_selected"] == BUDGET and metrics["unanswered"] == 0
        assert metrics["calls_spent_total"] == BUDGET
    # the two runs split the work: what one paid the other reused, nothing was asked twice
    paid = [json.loads((root / "query.json").read_text())["calls_this_run"] for root in clones]
    assert sum(paid) == BUDGET == computed_samples(count)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_four_processes_one_killed_mid_batch(tmp_path, backend, request):
    store = str(tmp_path / "store") if backend == "sqlite" else request.getfixturevalue("pg_store_url")
    teacher = linear_onnx_teacher(tmp_path / "teacher.onnx", input_shape=[1, 8, 8])
    count = tmp_path / "count.log"
    clones = [make_clone(tmp_path / f"clone{n}", store, count, teacher) for n in range(4)]
    processes = {process.pid: process for process in (start(root) for root in clones)}
    deadline = time.monotonic() + 400  # four interpreters importing torch on a busy 2-core machine
    while not computing_pids(count) and time.monotonic() < deadline:
        ended = [p for p in processes.values() if p.poll() is not None]
        assert not ended, ended[0].communicate()[1]
        time.sleep(0.01)
    victim = processes[computing_pids(count)[0]]  # it has a batch in the teacher right now
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    survivors = [(root, p) for root, p in zip(clones, processes.values()) if p is not victim]
    for _, process in survivors:
        _, stderr = process.communicate(timeout=240)  # nobody waits for ever on the dead run's batch
        assert process.returncode == 0, stderr
    computed = computed_samples(count)
    assert computed <= BUDGET
    answered = {json.loads((root / "query.json").read_text())["answered_selected"] for root, _ in survivors}
    assert len(answered) == 1  # every survivor has every answer paid for
    (answered,) = answered
    metrics = json.loads((survivors[0][0] / "query.json").read_text())
    assert metrics["calls_spent_total"] == BUDGET
    # what the killed run had in flight is lost (at most its one batch of 10), everything else is answered
    assert BUDGET - 10 <= answered == BUDGET - metrics["teacher_lost"]
