"""`dvc exp show` readable at 120 columns (issue 20): only the decision metrics are declared as `metrics:`
(the shipped student's accuracy, calls spent, cost), every other figure is a plain output; `make exps`
(`python -m ckd.exps`) puts method and budget first and sorts by accuracy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ckd.exps import table
from ckd.stages.validate import decision_metrics
from tests.helpers import PROJECT, copy_project, with_changes

DVC = str(Path(sys.executable).with_name("dvc"))


def test_only_the_decision_metrics_are_declared_as_metrics():
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    declared = [next(iter(m)) if isinstance(m, dict) else m for s in stages.values() for m in s.get("metrics", [])]
    assert declared == ["metrics/decision.json"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for s in stages.values() for o in s.get("outs", [])}
    assert {"metrics/query.json", "metrics/check.json", "metrics/train/metrics.json", "metrics/validate.json"} <= outs
    assert "--decision metrics/decision.json" in stages["validate"]["cmd"]


def accounting(cost):
    """The query stage's metrics, as `read_accounting` returns them (an LLM teacher's cost where priced)."""
    spent = {"budget": 5, "calls_this_run": 3, "calls_spent_total": 4, "teacher_outputs": 3, "teacher_lost": 0}
    return spent if cost is None else {**spent, "estimated_cost_this_run": cost}


def test_decision_metrics_are_accuracy_calls_and_cost():
    test = {"test_accuracy": 0.9, "onnx_test_accuracy": 0.91, "int8_test_accuracy": 0.9, "test_size": 36}
    assert decision_metrics(test, accounting(0.0123)) == {
        "onnx_test_accuracy": 0.91,
        "calls_spent_total": 4,
        "estimated_cost": 0.0123,
    }
    agreement = {"teacher_agreement": 0.8, "onnx_teacher_agreement": 0.8, "int8_teacher_agreement": 0.7}
    assert decision_metrics(agreement, accounting(None)) == {"onnx_teacher_agreement": 0.8, "calls_spent_total": 4}


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


# A small run of the whole pipeline (the end-to-end test's settings) in a git + DVC copy of the project.
SMALL_RUN = {
    "teacher.budget": 60,
    "teacher.standin.epochs": 3,
    "student.steps": 200,
    "student.lr": [0.003],
    "student.eval_every": 50,
    "validate.min_accuracy": 0.5,
    "validate.latency_runs": 20,
}


@pytest.fixture(scope="module")
def after_repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Callable[..., str]]:
    """A git + DVC copy of the project after `dvc repro` (small settings) and a commit; the environment."""
    root = copy_project(tmp_path_factory.mktemp("exps") / "project")
    params = with_changes(yaml.safe_load((root / "params.yaml").read_text()), SMALL_RUN)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".gitignore").write_text("/teacher_outputs/\n__pycache__/\n")
    env = {**os.environ, "COLUMNS": "120", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    env.pop("PYTHONPATH", None)  # the stages and `python -m ckd.exps` import the copy's ckd, as in a clone

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    run("git", "init", "-q")
    run(DVC, "init", "-q")
    run(DVC, "config", "core.analytics", "false")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "the project")  # DVCLive (train) needs a commit
    run(DVC, "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "a run")
    return root, env, run


@pytest.mark.slow
def test_make_exps_after_a_repro_fits_120_columns_with_accuracy(after_repro: tuple[Path, dict, Callable]) -> None:
    """`make exps`, the documented command, exactly as the Makefile runs it, on a real run's `dvc exp show`."""
    root, _, run = after_repro
    venv = Path(sys.executable).parent.parent
    shown = run("make", "--no-print-directory", "-f", str(PROJECT / "Makefile"), "exps", f"VENV={venv}")
    lines = [line for line in shown.splitlines() if line.startswith("|")]
    assert len(lines) == 4 and all(len(line) <= 120 for line in shown.splitlines())  # header, rule, 2 rows
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines]
    assert cells[0][:3] == ["method", "budget", "accuracy"]
    accuracy = json.loads((root / "metrics" / "decision.json").read_text())["onnx_test_accuracy"]
    assert [row[:4] for row in cells[2:]] == [["ckd", "60", f"{accuracy:.4f}", "60"]] * 2  # workspace, commit


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="DVC 3 (dvc/repo/params/show.py, _collect_params) shows every key of params.yaml, the default params "
    "file, whether or not a stage depends on it, and one column per dependency path (~60 keys + ~65 paths "
    "here): past ~85 such columns its table collapses every column, accuracy too; `make exps` is the command",
)
def test_plain_dvc_exp_show_fits_120_columns_with_accuracy(after_repro: tuple[Path, dict, Callable]) -> None:
    _, _, run = after_repro
    shown = run(DVC, "exp", "show", "--no-pager")
    assert all(len(line) <= 120 for line in shown.splitlines())
    assert "onnx_test_accuracy" in shown
