"""One small end-to-end run: the Prefect flow drives `dvc repro` stage by stage on the embedded digits,
then a second `dvc repro` skips everything, a NaN teacher stops at `check`, and budget 0 fails at once."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ckd.store import open_store
from tests.conftest import PROJECT, linear_onnx_teacher

DVC = str(Path(sys.executable).with_name("dvc"))
SMALL = {"teacher.budget": 60, "teacher.standin.epochs": 3, "student.steps": 300, "student.lr": [0.003],
         "student.eval_every": 50, "validate.min_accuracy": 0.5, "validate.latency_runs": 20}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    for item in ("dvc.yaml", "params.yaml", "stages", "ckd", "serving"):
        source = PROJECT / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / item)
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=root, check=True)
    return root


def dvc_repro(root):
    return subprocess.run([DVC, "repro"], cwd=root, capture_output=True, text=True)


def test_flow_then_cached_repro_then_bad_teacher_then_zero_budget(project):
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import ckd_pipeline

    with prefect_test_harness(server_startup_timeout=120):
        metrics = ckd_pipeline(overrides=SMALL, project_dir=str(project))
    for key in ("test_accuracy", "onnx_test_accuracy", "onnx_max_abs_diff", "calls_this_run", "calls_spent_total",
                "teacher_outputs",
                "budget", "method", "latency_ms_batch1", "teacher_eval_calls"):
        assert key in metrics
    assert metrics == json.loads((project / "metrics" / "validate.json").read_text())
    assert metrics["calls_this_run"] == metrics["calls_spent_total"] <= metrics["budget"] == 60
    assert metrics["teacher_outputs"] == 60 and metrics["method"] == "ckd"
    assert metrics["onnx_max_abs_diff"] <= 1e-4 and metrics["test_accuracy"] >= 0.5
    assert metrics["teacher_eval_calls"] == 500  # the stand-in only, reported apart from the budget
    assert (project / "metrics" / "train_curve.csv").read_text().startswith("step,train_loss,val_accuracy")
    # the serving bundle, the int8 model (within its gate) and the model card
    assert metrics["onnx_test_accuracy"] - metrics["int8_test_accuracy"] <= 0.01
    assert all(f"latency_ms_batch{b}{r}" in metrics for b in (1, 256) for r in ("", "_torch", "_int8"))
    for artifact in ("student.int8.onnx", "serving/triton/ckd_student/config.pbtxt", "serving/triton/ckd_student/1/"
                     "model.onnx", "serving/kserve/inferenceservice.yaml", "serving/mlserver/model-settings.json"):
        assert (project / "models" / artifact).is_file(), artifact
    card = json.loads((project / "models" / "model_card.json").read_text())
    assert card["teacher_calls"]["calls_spent_total"] == 60 and card["accuracy"]["test_size"] == 500
    assert card["accuracy"]["int8"] == metrics["int8_test_accuracy"] and "dvc exp run" in card["reproduce"]
    assert "Teacher calls spent in the store in total: 60 of a budget of 60" in \
        (project / "models" / "model_card.md").read_text()

    # nothing changed: every stage is skipped, quickly
    start = time.perf_counter()
    again = dvc_repro(project)
    assert again.returncode == 0
    assert time.perf_counter() - start < 10
    assert "Running stage" not in again.stdout and again.stdout.count("didn't change") == 8

    # a user's teacher that answers NaN for some rows: stopped at check, paid outputs kept
    nan_teacher = linear_onnx_teacher(project / "nan_teacher.onnx", input_shape=[1, 8, 8], nan_below=290.0)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["teacher"]["model"] = str(nan_teacher)
    params["teacher"]["budget"] = 120  # one purse for the store: the new teacher gets the 60 calls added
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    failed = dvc_repro(project)
    assert failed.returncode != 0
    assert "ckd check: error: data/queried.npz: failed expect_column_values_to_be_in_set {'column': " \
           "'row_is_finite'}" in failed.stderr
    assert "Running stage 'build'" not in failed.stdout
    assert "Great Expectations Data Docs: " in failed.stderr and (project / "reports" / "data_docs" / "index.html").is_file()
    teachers = open_store(str(project / "teacher_outputs")).summaries()
    # two teachers, never mixed; the first one's answers still there; the store's total within the budget
    assert sorted(t.answered for t in teachers) == [60, 60] and sum(t.spent for t in teachers) == 120

    # budget 0: fails at once, naming the parameter, before any stage runs
    rejected = subprocess.run([sys.executable, "-m", "flows.pipeline", "--project-dir", str(project),
                               "--set", "teacher.budget=0"], capture_output=True, text=True, cwd=PROJECT)
    assert rejected.returncode == 2
    assert rejected.stderr.strip().splitlines()[-1].startswith("ckd flow: error: teacher.budget: must be an integer >= 1")
    params["teacher"]["budget"] = 0
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    zero = dvc_repro(project)
    assert zero.returncode != 0 and "error: teacher.budget: must be an integer >= 1" in zero.stderr
