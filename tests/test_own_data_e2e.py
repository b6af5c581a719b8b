"""The whole pipeline on a user's own data and teacher, as issue 8's "done when" asks: a folder of PNGs, a
CSV, a Parquet table, an unlabelled pool with the user's ONNX teacher, and one with a teacher behind a
server. In each, no stand-in is trained (the `standin` stage writes its note), and the teacher computed at
most the budget (counted on the teacher's side: a durable count file, or the samples a proxy forwarded).

The PNG folder goes through `dvc repro` itself (twice: the second run skips all but the fingerprint); the
others run every stage command of dvc.yaml in this process (`tests/helpers/stages.py`), which saves an
interpreter start-up per stage and leaves the same files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ckd.data import write_arrays
from tests.helpers import copy_project, linear_onnx_teacher
from tests.helpers.counting import computed_samples
from tests.helpers.own_data import blobs, image_folder, table
from tests.helpers.stages import run_stage_commands

DVC = str(Path(sys.executable).with_name("dvc"))
BUDGET = 40
SMALL = {  # a short run: the point is the path through every stage, not the accuracy
    "teacher": {"budget": BUDGET, "batch_size": 16},
    "student": {"steps": 150, "lr": [0.003], "eval_every": 50, "average_last": 1},
    "export": {"int8_calibration_samples": 64},
    "validate": {"min_accuracy": 0.0, "latency_runs": 5, "max_int8_drop": 1.0},
}

# A user's teacher written as code: the rule that made the PNGs (the bright half), counted durably.
PYTHON_TEACHER = """
import os
import numpy as np

def predict(x):
    with open(os.environ.get("CKD_TEST_COUNT", "count.log"), "a") as handle:
        handle.write(f"{len(x)} {os.getpid()}\\n")
    left, right = x[..., :4].mean(axis=(1, 2, 3)), x[..., 4:].mean(axis=(1, 2, 3))
    return np.stack([left - right, right - left], axis=1) / 10.0
"""


def project(root: Path, data: dict, teacher: dict) -> Path:
    copy_project(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in {**SMALL, "data": data}.items():
        params[section].update(values)
    params["teacher"].update(SMALL["teacher"], **teacher, store=str(root / "store"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=root, check=True)
    return root


def repro(root: Path, env: dict | None = None) -> dict:
    run = subprocess.run(
        [DVC, "repro"], cwd=root, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=1800
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    return outcome(root)


def stage_commands(root: Path, capsys, monkeypatch) -> dict:
    failed = run_stage_commands(root, capsys, monkeypatch)
    assert failed is None, (failed.stage, failed.stderr[-3000:]) if failed else None
    return outcome(root)


def outcome(root: Path) -> dict:
    assert json.loads((root / "metrics" / "standin.json").read_text()) == {"trained": 0}
    assert not (root / "models" / "standin" / "teacher.onnx").exists()
    assert (root / "models" / "standin" / "NOT_USED.txt").is_file()
    validate = json.loads((root / "metrics" / "validate.json").read_text())
    assert validate["calls_spent_total"] <= BUDGET and validate["teacher_outputs"] == BUDGET
    assert validate["onnx_max_abs_diff"] <= 1e-4
    assert (root / "models" / "student.onnx").is_file() and (root / "models" / "model_card.md").is_file()
    return validate


@pytest.mark.slow
def test_png_folder_with_a_python_teacher(tmp_path):
    root = tmp_path / "project"
    images = image_folder(tmp_path / "images", per_class=60)
    (tmp_path / "project").mkdir()
    (root / "my_teacher.py").write_text(PYTHON_TEACHER)
    project(
        root,
        {"source": str(images), "test_size": 40},
        {"kind": "python", "callable": "my_teacher:predict"},
    )
    count = tmp_path / "count.log"
    metrics = repro(root, {"CKD_TEST_COUNT": str(count)})
    assert computed_samples(count) == BUDGET
    # a second run pays nothing and redoes nothing but the fingerprint
    run = subprocess.run(
        [DVC, "repro"], cwd=root, capture_output=True, text=True, env={**os.environ, "CKD_TEST_COUNT": str(count)}
    )
    assert (
        run.returncode == 0 and "Stage 'query' didn't change" in run.stdout and "Running stage 'teacher'" in run.stdout
    )
    assert "Running stage 'train'" not in run.stdout and computed_samples(count) == BUDGET
    assert metrics["test_size"] == 40 and metrics["test_accuracy"] >= 0.9  # the rule is learnt from 40 answers
    card = json.loads((root / "models" / "model_card.json").read_text())
    assert card["data"]["hash_of"].startswith("folder")
    from ckd.export import read_metadata

    assert json.loads(read_metadata(root / "models" / "student.onnx")["class_names"]) == ["bright", "dark"]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_with_a_users_onnx_teacher(tmp_path, suffix, capsys, monkeypatch):
    source = table(tmp_path / f"measurements{suffix}")
    teacher = linear_onnx_teacher(tmp_path / "my_teacher.onnx", features=6, classes=3)
    count = tmp_path / "count.log"
    root = project(
        tmp_path / "project",
        {"source": str(source), "test_size": 0.25},
        {"kind": "counting", "model": str(teacher), "count_file": str(count)},
    )
    metrics = stage_commands(root, capsys, monkeypatch)
    assert computed_samples(count) <= BUDGET and metrics["test_size"] == 60


@pytest.mark.slow
def test_unlabelled_pool_with_a_users_onnx_teacher_reports_agreement(tmp_path, capsys, monkeypatch):
    source = table(tmp_path / "pool.parquet", label=None)
    teacher = linear_onnx_teacher(tmp_path / "my_teacher.onnx", features=6, classes=3)
    count = tmp_path / "count.log"
    root = project(
        tmp_path / "project",
        {"source": str(source), "label": None, "class_names": ["a", "b", "c"]},
        {"kind": "counting", "model": str(teacher), "count_file": str(count)},
    )
    metrics = stage_commands(root, capsys, monkeypatch)
    assert computed_samples(count) <= BUDGET
    assert "test_accuracy" not in metrics and metrics["agreement_size"] == 8  # val_fraction 0.2 of 40, never trained on
    assert 0.0 <= metrics["teacher_agreement"] <= 1.0 and "onnx_teacher_agreement" in metrics
    summary = subprocess.run(
        [sys.executable, "-m", "ckd.summary", "metrics/validate.json"], cwd=root, capture_output=True, text=True
    )
    assert "agreement with the teacher (no labelled test set" in summary.stdout
    assert "Agreement with the teacher" in (root / "models" / "model_card.md").read_text()


@pytest.mark.slow
@pytest.mark.server
def test_unlabelled_pool_with_an_http_teacher_and_a_labelled_test_source(tmp_path, capsys, monkeypatch):
    from tests.helpers.fault_proxy import FaultProxy
    from tests.helpers.servers import KServeTeacher, server_python

    if not server_python().exists() and not os.environ.get("CI"):
        pytest.skip("the server environment (.venv-server) is built by `make install-test`")
    x, y = blobs(300, features=6, classes=3)
    write_arrays(tmp_path / "pool.npz", x=x[:240], class_names=np.array(["a", "b", "c"]))
    write_arrays(tmp_path / "test.npz", x=x[240:], y=y[240:])
    teacher = linear_onnx_teacher(tmp_path / "served.onnx", features=6, classes=3)
    with KServeTeacher(teacher) as server, FaultProxy(server, lambda i: "ok") as proxy:
        root = project(
            tmp_path / "project",
            {"source": str(tmp_path / "pool.npz"), "test_source": str(tmp_path / "test.npz")},
            {"kind": "http", "url": proxy.url, "model_name": "teacher"},
        )
        metrics = stage_commands(root, capsys, monkeypatch)
        assert proxy.computed <= BUDGET
    assert metrics["test_size"] == 60 and "test_accuracy" in metrics
