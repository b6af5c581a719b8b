"""One small end-to-end run: the Prefect flow drives `dvc repro` stage by stage on the embedded digits,
then a second `dvc repro` skips everything, a NaN teacher stops at `check`, and budget 0 fails at once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ckd.stages import stage_names
from ckd.store import open_store
from tests.conftest import PROJECT, linear_onnx_teacher
from tests.helpers import copy_project, with_changes

DVC = str(Path(sys.executable).with_name("dvc"))
SMALL = {
    "teacher.budget": 60,
    "teacher.standin.epochs": 3,
    "student.steps": 300,
    "student.lr": [0.003],
    "student.eval_every": 50,
    "validate.min_accuracy": 0.5,
    "validate.latency_runs": 20,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("project"), ("dvc.yaml", "params.yaml", "ckd", "serving", "flows"))
    params = with_changes(yaml.safe_load((root / "params.yaml").read_text()), SMALL)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=root, check=True)
    return root


def dvc_repro(root):
    return subprocess.run([DVC, "repro"], cwd=root, capture_output=True, text=True)


@pytest.mark.slow
def test_flow_then_cached_repro_then_bad_teacher_then_zero_budget(project, prefect_harness):
    from flows.pipeline import ckd_pipeline

    # the flow as the deployment runs it: params.yaml stays as it is, the overrides apply to this run only
    params_before = (project / "params.yaml").read_text()
    metrics = ckd_pipeline(overrides={"student.steps": 200}, project_dir=str(project))
    assert (project / "params.yaml").read_text() == params_before
    for key in (
        "test_accuracy",
        "onnx_test_accuracy",
        "onnx_max_abs_diff",
        "calls_this_run",
        "calls_spent_total",
        "teacher_outputs",
        "budget",
        "latency_ms_batch1",
        "teacher_eval_calls",
    ):
        assert key in metrics
    assert metrics == json.loads((project / "metrics" / "validate.json").read_text())
    assert not [key for key, value in metrics.items() if isinstance(value, str)]  # numbers only
    assert metrics["calls_this_run"] == metrics["calls_spent_total"] <= metrics["budget"] == 60
    assert metrics["teacher_outputs"] == 60
    assert metrics["onnx_max_abs_diff"] <= 1e-4 and metrics["test_accuracy"] >= 0.5
    assert (
        metrics["teacher_eval_calls"] == 359
    )  # the stand-in only, on the test split (0.2 of 1797), apart from the budget
    curve = project / "metrics" / "train" / "plots" / "metrics"
    assert (curve / "val" / "accuracy.tsv").read_text().startswith("step\taccuracy")
    assert len((curve / "test" / "accuracy.tsv").read_text().split()) > 4  # a test-accuracy point per evaluation
    # the serving bundle, the int8 model (within its gate) and the model card
    assert metrics["onnx_test_accuracy"] - metrics["int8_test_accuracy"] <= 0.01
    assert all(f"latency_ms_batch{b}{r}" in metrics for b in (1, 256) for r in ("", "_torch", "_int8"))
    for artifact in (
        "student.int8.onnx",
        "serving/triton/ckd_student/config.pbtxt",
        "serving/triton/ckd_student/1/model.onnx",
        "serving/kserve/inferenceservice.yaml",
        "serving/mlserver/ckd_student/model-settings.json",
    ):
        assert (project / "models" / artifact).is_file(), artifact
    card = json.loads((project / "models" / "model_card.json").read_text())
    assert card["teacher_calls"]["calls_spent_total"] == 60 and card["accuracy"]["samples"] == 359
    assert card["accuracy"]["int8"] == metrics["int8_test_accuracy"] and "dvc exp run" in card["reproduce"]
    assert (
        "Teacher calls spent in the store in total: 60 of a budget of 60"
        in (project / "models" / "model_card.md").read_text()
    )

    assert json.loads((project / "metrics" / "train" / "metrics.json").read_text())["best_step"] <= 200
    # the override was for that run only: a plain `dvc repro` trains again with params.yaml's 300 steps
    again = dvc_repro(project)
    assert again.returncode == 0 and "Running stage 'train'" in again.stdout
    assert "Running stage 'query'" not in again.stdout
    # nothing changed since: every stage is skipped but the always_changed ones: the data's check (download: a
    # note without data.download), the data's and the teacher's fingerprints, and the standin stage, which keeps
    # its unchanged stand-in (it reads teacher.* keys a params file may omit, so it has no params dependency on
    # the teacher section: issue 18)
    cached = dvc_repro(project)
    assert cached.returncode == 0 and cached.stdout.count("Running stage") == 4
    assert all(f"Running stage '{name}'" in cached.stdout for name in ("download", "source", "teacher", "standin"))
    assert "was trained from the same data and settings: kept" in cached.stdout + cached.stderr
    assert cached.stdout.count("didn't change") == len(stage_names(project)) - 4
    # back to the flow's settings (200 steps), then to params.yaml's: DVC's run cache restores train, export and
    # validate each time instead of training again (a stage with a `cache: false` output that is not a metric or
    # plot would never be saved to the run cache)
    for steps in (200, 300):
        (project / "params.yaml").write_text(
            yaml.safe_dump(with_changes(yaml.safe_load(params_before), {"student.steps": steps}))
        )
        restored = dvc_repro(project)
        assert restored.returncode == 0, restored.stderr
        for name in ("train", "export", "validate"):
            assert f"Stage '{name}' is cached - skipping run" in restored.stdout, (name, restored.stdout)
        assert "Running stage 'query'" not in restored.stdout and "Running stage 'train'" not in restored.stdout
    loss = (project / "metrics" / "train" / "plots" / "metrics" / "train" / "loss.tsv").read_text().split()
    assert loss[-2] == "300"  # the restored curve is the 300-step run's
    (project / "params.yaml").write_text(params_before)
    # a query that runs again without paying (forced here; a change to the store's code does it) writes the same
    # answers file: check, build and train are skipped; export and validate read the new accounting
    forced = subprocess.run(
        [DVC, "repro", "--force", "--single-item", "query"], cwd=project, capture_output=True, text=True
    )
    assert forced.returncode == 0, forced.stderr
    assert json.loads((project / "metrics" / "query.json").read_text())["calls_this_run"] == 0
    after = dvc_repro(project)
    assert after.returncode == 0, after.stderr
    for name in ("check", "build", "train"):
        assert f"Stage '{name}' didn't change, skipping" in after.stdout, (name, after.stdout)
    assert json.loads((project / "metrics" / "validate.json").read_text())["calls_this_run"] == 0

    # a user's teacher that answers NaN for some rows: stopped at check, paid outputs kept
    nan_teacher = linear_onnx_teacher(project / "nan_teacher.onnx", input_shape=[1, 8, 8], nan_below=290.0)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["teacher"]["model"] = str(nan_teacher)
    params["teacher"]["budget"] = 120  # one purse for the store: the new teacher gets the 60 calls added
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    failed = dvc_repro(project)
    assert failed.returncode != 0
    (line,) = [line for line in failed.stderr.splitlines() if line.startswith("ckd check: error: ")]
    assert line.startswith("ckd check: error: data/queried.npz: ") and "rows hold NaN or infinite scores" in line
    assert "Running stage 'build'" not in failed.stdout
    assert (
        "Great Expectations Data Docs: " in failed.stderr
        and (project / "reports" / "data_docs" / "index.html").is_file()
    )
    teachers = open_store(str(project / "teacher_outputs")).summaries()
    # two teachers, never mixed; the first one's answers still there; the store's total within the budget
    assert sorted(t.answered for t in teachers) == [60, 60] and sum(t.spent for t in teachers) == 120

    # budget 0: fails at once, naming the parameter, before any stage runs
    rejected = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", "--project-dir", str(project), "--set", "teacher.budget=0"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
    )
    assert rejected.returncode == 2
    last_line = rejected.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ckd flow: error: teacher.budget: must be an integer >= 1 and <= 10000000, got 0")
    params["teacher"]["budget"] = 0
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    zero = dvc_repro(project)
    assert zero.returncode != 0 and "error: teacher.budget: must be an integer >= 1" in zero.stderr
    assert "Running stage 'query'" not in zero.stdout  # the first stage that runs refuses the whole file
