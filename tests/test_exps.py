"""`dvc exp show` readable at 120 columns (issue 20): only the decision metrics are declared as `metrics:`
(the shipped student's accuracy, calls spent, cost), every other figure is a plain output; `make exps`
(`python -m ckd.exps`) puts method and budget first and sorts by accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ckd.exps import table
from ckd.query import Queried
from ckd.stages.validate import decision_metrics
from tests.helpers import PROJECT

DVC = str(Path(sys.executable).with_name("dvc"))


def test_only_the_decision_metrics_are_declared_as_metrics():
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    declared = [next(iter(m)) if isinstance(m, dict) else m for s in stages.values() for m in s.get("metrics", [])]
    assert declared == ["metrics/decision.json"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for s in stages.values() for o in s.get("outs", [])}
    assert {"metrics/query.json", "metrics/check.json", "metrics/train/metrics.json", "metrics/validate.json"} <= outs
    assert "--decision metrics/decision.json" in stages["validate"]["cmd"]


def queried(cost):
    return Queried(
        ids=np.arange(3),
        scores=np.zeros((3, 2), np.float32),
        selected=3,
        budget=5,
        calls_this_run=3,
        calls_spent_total=4,
        teacher_outputs=3,
        teacher_lost=0,
        estimated_cost=cost,
    )


def test_decision_metrics_are_accuracy_calls_and_cost():
    test = {"test_accuracy": 0.9, "onnx_test_accuracy": 0.91, "int8_test_accuracy": 0.9, "test_size": 36}
    assert decision_metrics(test, queried(0.0123)) == {
        "onnx_test_accuracy": 0.91,
        "calls_spent_total": 4,
        "estimated_cost": 0.0123,
    }
    agreement = {"teacher_agreement": 0.8, "onnx_teacher_agreement": 0.8, "int8_teacher_agreement": 0.7}
    assert decision_metrics(agreement, queried(None)) == {"onnx_teacher_agreement": 0.8, "calls_spent_total": 4}


@pytest.fixture
def repo(tmp_path):
    """A git + DVC project with the repository's dvc.yaml and params.yaml, the committed run and a workspace
    that differs from it (another method and budget, a higher accuracy)."""
    root = tmp_path / "project"
    (root / "metrics").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        (root / name).write_text((PROJECT / name).read_text())
    figures = {"calls_spent_total": 100, "estimated_cost": 0.5}
    for name in ("query", "check", "validate"):  # plain outputs: never exp show columns
        (root / "metrics" / f"{name}.json").write_text(json.dumps({"calls_this_run": 7, "latency_ms_batch1": 0.1}))
    # (the real validate.json repeats the decision figures under the same names: one spelling, one value)
    (root / "metrics" / "decision.json").write_text(json.dumps({"onnx_test_accuracy": 0.81, **figures}))

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True)

    git("init", "-q")
    subprocess.run([DVC, "init", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=root, check=True)
    git("add", "-A")
    git("commit", "-qm", "a run")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["student"]["method"], params["teacher"]["budget"] = "kd", 200
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "metrics" / "decision.json").write_text(json.dumps({"onnx_test_accuracy": 0.9312, **figures}))
    return root


def test_dvc_exp_show_has_only_the_decision_columns_and_make_exps_fits_120(repo):
    shown = subprocess.run([DVC, "exp", "show", "--csv"], cwd=repo, capture_output=True, text=True, check=True)
    header = shown.stdout.splitlines()[0].split(",")
    metrics = header[header.index("parent") + 1 : header.index("seed")]
    assert metrics == ["onnx_test_accuracy", "calls_spent_total", "estimated_cost"]
    assert "calls_this_run" not in header and "latency_ms_batch1" not in header
    lines = table(shown.stdout).splitlines()
    assert all(len(line) <= 120 for line in lines)
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines]
    assert cells[0][:5] == ["method", "budget", "accuracy", "calls", "cost"]
    assert [row[:5] for row in cells[2:]] == [
        ["kd", "200", "0.9312", "100", "0.5000"],  # the workspace: the better one first
        ["ckd", "100", "0.8100", "100", "0.5000"],
    ]
    assert "| test |" in lines[2]
