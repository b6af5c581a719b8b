"""The Prefect flow over a small DVC project of quick stages: the stage list from dvc.yaml, overrides that
leave the tracked params.yaml alone, retry by exit status, live log lines, timeouts and artifacts."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from prefect.logging import disable_run_logger

from ckd.errors import CkdError, ConfigError
from flows.pipeline import (
    StageFailed,
    backup_path,
    ckd_pipeline,
    metrics_markdown,
    overridden_document,
    params_overridden,
    parse_set,
    read_dvc_yaml,
    restore_interrupted,
    retry_unless_user_error,
    run_stage,
    stage_order,
    stream_command,
)
from tests.conftest import PROJECT

DVC = str(Path(sys.executable).with_name("dvc"))
# Each quick stage reads params.yaml, as a real one does, and writes its metrics.
STAGE_SCRIPT = textwrap.dedent("""
    import json, pathlib, sys, yaml
    from ckd.errors import record_exit_status
    stage, behaviour = sys.argv[1], sys.argv[2]
    pathlib.Path("attempts.log").open("a").write(stage + "\\n")
    if behaviour == "user_error":
        print(f"ckd {stage}: error: teacher.budget: bad", file=sys.stderr)
        record_exit_status(2)
        sys.exit(2)
    if behaviour == "crash":
        sys.exit(1)
    params = yaml.safe_load(open("params.yaml"))
    print(f"{stage}: budget {params['teacher']['budget']}")
    pathlib.Path("metrics").mkdir(exist_ok=True)
    json.dump({"budget": params["teacher"]["budget"], "steps": {"student": params["student"]["steps"]}},
              open(f"metrics/{stage}.json", "w"))
    pathlib.Path(f"out_{stage}").write_text(stage)
""")


def write_project(root: Path, behaviours: dict[str, str]) -> Path:
    """A git + DVC project: params.yaml (the real one) and stages `first` -> `second` -> `third`,
    declared in dvc.yaml out of order so that the flow must follow deps, not file order."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "params.yaml", root / "params.yaml")
    (root / "stage.py").write_text(STAGE_SCRIPT)
    chain = {"first": None, "second": "first", "third": "second"}
    stages = {}
    for name in ("third", "first", "second"):
        stages[name] = {
            "cmd": f"{sys.executable} stage.py {name} {behaviours.get(name, 'ok')}",
            "deps": ["stage.py"] + ([f"out_{chain[name]}"] if chain[name] else []),
            "params": ["teacher.budget", "student.steps"],
            "outs": [f"out_{name}"],
            "metrics": [{f"metrics/{name}.json": {"cache": False}}],
        }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for command in (
        ["git", "init", "-q"],
        [DVC, "init", "-q"],
        [DVC, "config", "core.analytics", "false"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "project"],
    ):
        subprocess.run(command, cwd=root, check=True, env=env, capture_output=True)
    return root


def attempts(root: Path) -> list[str]:
    log = root / "attempts.log"
    return log.read_text().split() if log.exists() else []


def git_diff(root: Path, path: str) -> str:
    return subprocess.run(["git", "diff", "--", path], cwd=root, capture_output=True, text=True, check=True).stdout


def test_stage_order_comes_from_dvc_yaml(tmp_path):
    assert stage_order(read_dvc_yaml(PROJECT)) == list(read_dvc_yaml(PROJECT)["stages"])
    project = write_project(tmp_path / "p", {})
    assert list(read_dvc_yaml(project)["stages"]) == ["third", "first", "second"]
    assert stage_order(read_dvc_yaml(project)) == ["first", "second", "third"]
    cyclic = {"stages": {"a": {"deps": ["b.out"], "outs": ["a.out"]}, "b": {"deps": ["a.out"], "outs": ["b.out"]}}}
    with pytest.raises(CkdError, match="cycle"):
        stage_order(cyclic)


def test_overrides_are_validated_and_keep_comments(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(PROJECT / "params.yaml", params)
    text = overridden_document(params, {"teacher.budget": 150, "student.method": "kd"})
    assert "# hard cap on teacher calls" in text
    loaded = yaml.safe_load(text)
    assert loaded["teacher"]["budget"] == 150 and loaded["student"]["method"] == "kd"
    with pytest.raises(ConfigError, match="teacher.budget"):
        overridden_document(params, {"teacher.budget": 0})
    with pytest.raises(CkdError, match="nosuch.key: no such parameter section"):
        overridden_document(params, {"nosuch.key": 1})
    assert params.read_text() == (PROJECT / "params.yaml").read_text()


def test_params_restored_after_overrides_even_on_failure_and_after_a_kill(tmp_path):
    project = write_project(tmp_path / "p", {})
    params = project / "params.yaml"
    original = params.read_text()
    with params_overridden(params, {"teacher.budget": 7}):
        assert yaml.safe_load(params.read_text())["teacher"]["budget"] == 7
    assert params.read_text() == original and git_diff(project, "params.yaml") == ""
    with pytest.raises(RuntimeError), params_overridden(params, {"teacher.budget": 8}):
        raise RuntimeError("a stage failed")
    assert params.read_text() == original and not backup_path(params).exists()
    # a run killed while the overrides were in place: the next run puts params.yaml back first
    backup_path(params).write_text(original)
    params.write_text(original.replace("budget: 100", "budget: 9"))
    assert restore_interrupted(params) and params.read_text() == original and not backup_path(params).exists()


def test_parse_set():
    assert parse_set(["teacher.budget=200", "student.lr=[0.1, 0.2]"]) == {
        "teacher.budget": 200,
        "student.lr": [0.1, 0.2],
    }
    with pytest.raises(CkdError, match="expected KEY=VALUE"):
        parse_set(["teacher.budget"])


class FailedState:
    def __init__(self, error):
        self.error = error

    def result(self):
        raise self.error


def test_retry_only_crashes():
    assert retry_unless_user_error(None, None, FailedState(StageFailed("query", -9, "killed"))) is True
    assert retry_unless_user_error(None, None, FailedState(StageFailed("query", 2, "bad input"))) is False
    assert retry_unless_user_error(None, None, FailedState(TimeoutError())) is True


def test_lines_reach_the_log_while_the_stage_still_runs(tmp_path):
    """The stage prints a line, then waits for a file that only the line's handler creates: the
    handler must see the line while the stage is still running, or the stage ends without 'go'."""
    flag = tmp_path / "seen"
    child = (
        "import pathlib, sys, time\nprint('first line', flush=True)\nflag = pathlib.Path(sys.argv[1])\n"
        "for _ in range(600):\n    if flag.exists(): print('go'); break\n    time.sleep(0.1)\n"
    )
    lines = []

    def on_line(line):
        lines.append(line)
        flag.touch()

    status, timed_out = stream_command(
        [sys.executable, "-c", child, str(flag)], tmp_path, dict(os.environ), on_line, timeout_s=600
    )
    assert (status, timed_out) == (0, False)
    assert lines == ["first line", "go"]


def test_a_stage_past_its_timeout_is_stopped(tmp_path):
    status, timed_out = stream_command(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        tmp_path,
        dict(os.environ),
        lambda line: None,
        timeout_s=1,
    )
    assert timed_out and status != 0


def test_user_error_reaches_the_task_through_dvc(tmp_path):
    """A stage that exits 2 is told apart from a crash, although `dvc repro` exits 255 for both."""
    project = write_project(tmp_path / "p", {"first": "user_error", "second": "crash"})
    with pytest.raises(StageFailed) as user, disable_run_logger():
        run_stage.fn("first", str(project))
    assert user.value.user_error and "teacher.budget: bad" in str(user.value)
    subprocess.run([DVC, "repro", "--single-item", "first"], cwd=project, capture_output=True)
    (project / "out_first").write_text("first")
    with pytest.raises(StageFailed) as crash, disable_run_logger():
        run_stage.fn("second", str(project))
    assert not crash.value.user_error and crash.value.returncode not in (0, 2)


@pytest.mark.slow
def test_flow_with_overrides_leaves_params_alone_and_publishes_artifacts(tmp_path, prefect_harness):
    project = write_project(tmp_path / "p", {})
    before = (project / "params.yaml").read_text()
    last = ckd_pipeline(overrides={"teacher.budget": 7, "student.steps": 11}, project_dir=str(project))
    assert last == {"budget": 7, "steps": {"student": 11}}
    assert attempts(project) == ["first", "second", "third"]
    assert (project / "params.yaml").read_text() == before and git_diff(project, "params.yaml") == ""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock["stages"]["third"]["params"]["params.yaml"]["teacher.budget"] == 7  # DVC saw the override

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ckd-metrics"])))
    # this run's table (an earlier test's flow may have published one under the same key in this harness)
    assert any("| third | steps.student | 11 |" in artifact.data for artifact in artifacts)

    # a plain run afterwards: DVC sees params.yaml disagree with dvc.lock and runs the stages again
    assert ckd_pipeline(project_dir=str(project)) == {"budget": 100, "steps": {"student": 2000}}


@pytest.mark.slow
def test_flow_does_not_retry_a_user_error_but_retries_a_crash(tmp_path, prefect_harness):
    project = write_project(tmp_path / "user", {"second": "user_error"})
    with pytest.raises(StageFailed, match="stage second exited 2"):
        ckd_pipeline(project_dir=str(project))
    assert attempts(project) == ["first", "second"]
    project = write_project(tmp_path / "crash", {"second": "crash"})
    with pytest.raises(StageFailed, match="stage second exited"):
        ckd_pipeline(overrides={"teacher.budget": 5}, project_dir=str(project))
    assert attempts(project) == ["first", "second", "second"]
    assert git_diff(project, "params.yaml") == ""


def test_metrics_markdown_flattens_nested_keys():
    table = metrics_markdown({"train": {"val": {"accuracy": 0.5}, "best_step": 300}})
    assert "| train | val.accuracy | 0.5 |" in table and "| train | best_step | 300 |" in table
    json.dumps(table)


def test_deployment_declares_what_it_needs():
    """prefect.yaml: the entrypoint loads, one run at a time, a named process pool, no environment
    variable needed to find the project (the flow defaults to its own repository)."""
    from prefect.flows import load_flow_from_entrypoint

    from flows.pipeline import PROJECT_DIR

    config = yaml.safe_load((PROJECT / "prefect.yaml").read_text())
    (deployment,) = config["deployments"]
    assert load_flow_from_entrypoint(str(PROJECT / deployment["entrypoint"])).name == "ckd-pipeline"
    assert deployment["concurrency_limit"] == 1
    assert deployment["work_pool"]["name"] == "ckd-process"
    assert "$" not in (PROJECT / "prefect.yaml").read_text().split("deployments:")[1]
    assert PROJECT_DIR == PROJECT
    assert "prefect work-pool create ckd-process --type process" in (PROJECT / "docs" / "pipeline.md").read_text()
