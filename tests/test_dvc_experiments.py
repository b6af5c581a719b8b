"""The default store is reached, with no setting, by the workspace, `dvc exp run --temp` and experiments run
by `dvc queue start -j 2`: against a teacher that counts what it computed, nothing is computed twice, and a
temporary experiment with a raised budget pays only for the difference."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ckd.store import open_store
from tests.helpers import PROJECT, copy_project, linear_onnx_teacher
from tests.helpers.counting import computed_samples

DVC = str(Path(sys.executable).with_name("dvc"))


def sh(root, *command, env):
    run = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, timeout=400)
    assert run.returncode == 0, f"{' '.join(command)}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout


@pytest.fixture
def repo(tmp_path):
    """A git + DVC repository holding ckd and the project's stages up to `query`, with a counting teacher."""
    root = copy_project(tmp_path / "repo", ("ckd",))
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    wanted = ("download", "source", "standin", "teacher", "embed", "sample", "query")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {k: stages[k] for k in wanted}}))
    linear_onnx_teacher(root / "teacher.onnx", input_shape=[1, 8, 8])
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["teacher"].update(
        kind="counting",
        model="teacher.onnx",
        budget=60,
        batch_size=20,
        store="teacher_outputs",  # the default: relative, so resolved to the main repository
        count_file=str(tmp_path / "count.log"),
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / ".gitignore").write_text("/data/\n/teacher_outputs/\n__pycache__/\n")
    env = {
        **os.environ,
        "TQDM_DISABLE": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    env.pop("PYTHONPATH", None)  # the stages import the repository's own copy of ckd, as in a user's clone
    sh(root, "git", "init", "-q", env=env)
    sh(root, DVC, "init", "-q", env=env)
    sh(root, DVC, "config", "core.analytics", "false", env=env)
    sh(root, "git", "add", "-A", env=env)
    sh(root, "git", "commit", "-qm", "init", env=env)
    return root, tmp_path / "count.log", env


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_workspace_temp_and_queued_experiments_share_one_store(repo):
    root, count, env = repo
    sh(root, DVC, "repro", env=env)
    assert computed_samples(count) == 60
    assert json.loads((root / "metrics" / "query.json").read_text())["calls_this_run"] == 60
    sh(root, "git", "add", "-A", env=env)
    sh(root, "git", "commit", "-qm", "workspace run", env=env)

    # a temporary experiment re-runs the query stage in .dvc/tmp/exps/...: every answer comes from the store
    sh(root, DVC, "exp", "run", "--temp", "-S", "teacher.batch_size=30", env=env)
    assert computed_samples(count) == 60
    # a raised budget selects 20 more inputs (nested selection): only those 20 are paid
    sh(root, DVC, "exp", "run", "--temp", "-S", "teacher.budget=80", env=env)
    assert computed_samples(count) == 80

    # two queued experiments run at once by two workers: nothing computed again
    for size in (16, 24):
        sh(root, DVC, "exp", "run", "--queue", "-S", f"teacher.batch_size={size}", env=env)
    # the workers it starts inherit its output: read none of it, or this call lasts as long as the experiments
    started = subprocess.run(
        [DVC, "queue", "start", "-j", "2"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert started.returncode == 0
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = sh(root, DVC, "queue", "status", env=env)
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    assert computed_samples(count) == 80

    store = open_store(str(root / "teacher_outputs"))
    (summary,) = store.summaries()
    assert store.spent() == 80 and summary.answered == 80
    assert not list((root / ".dvc" / "tmp").rglob("ckd-store.sqlite"))  # no store was left in a temp folder
    shown = json.loads(sh(root, DVC, "exp", "show", "--json", env=env))
    # every experiment is listed without error (its decision metrics come from validate, past this fixture's
    # stages: tests/test_exps.py shows them)
    assert shown and all(entry.get("error") is None for entry in shown), shown
