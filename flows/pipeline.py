"""The pipeline as a Prefect flow: each DVC stage is a task that runs `dvc repro --single-item <stage>`.

DVC decides what is up to date (a task over an unchanged stage returns at once) and keeps lineage;
Prefect adds retries, schedules, logs, artifacts and the UI. The stages and their order come from
`dvc.yaml`, their metrics files too. A stage that rejects its input (exit status 2, reported through
$CKD_STAGE_STATUS_FILE because `dvc repro` folds every failure into its own status) is not retried; any
other failure (a crash, a kill, a timeout) is retried once, which is safe for `query` because the budget
store (ckd.store), not Prefect, decides what may be sent again.

    python -m flows.pipeline                       # run once, parameters from params.yaml
    python -m flows.pipeline --set teacher.budget=200 --set student.method=kd
    python -m flows.pipeline --serve               # serve the nightly deployment (cron below)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# The temporary ("ephemeral") API server that a run without PREFECT_API_URL starts must come up before
# Prefect gives up; its default of 20 s is too short on a busy 2-core machine. Set before Prefect reads
# its settings; an explicit setting in the environment wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "600")

import yaml  # noqa: E402

from ckd.extras import MissingExtra, require  # noqa: E402

try:
    require("prefect", "the Prefect flow (python -m flows.pipeline)")
except MissingExtra as error:
    raise SystemExit(f"ckd pipeline: error: {error}") from None

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_link_artifact, create_markdown_artifact  # noqa: E402

from ckd.config import load_params, validate_all  # noqa: E402
from ckd.errors import STATUS_FILE_ENV, USER_ERROR_EXIT, CkdError  # noqa: E402
from ckd.stages import read_dvc_yaml  # noqa: E402  (the one reader of dvc.yaml)

PROJECT_DIR = Path(__file__).resolve().parents[1]  # the repository this file belongs to
NIGHTLY_CRON = "0 3 * * *"
STAGE_TIMEOUT_S = 3 * 3600  # generous: the stand-in teacher and a large student on a CPU take minutes
# DVC's own statuses for problems a retry cannot fix: configuration error, not a DVC repository,
# dvc.yaml not parsable.
DVC_USER_ERRORS = {251: "DVC configuration error", 253: "not a DVC repository", 254: "dvc.yaml cannot be parsed"}


class StageFailed(Exception):
    def __init__(self, stage: str, returncode: int, tail: str):
        self.stage, self.returncode = stage, returncode
        super().__init__(f"stage {stage} exited {returncode}: {tail}")

    @property
    def user_error(self) -> bool:
        return self.returncode == USER_ERROR_EXIT


def retry_unless_user_error(task_obj: Any, task_run: Any, state: Any) -> bool:
    """Retry crashes, kills and timeouts; never a stage that rejected its input."""
    try:
        state.result()
    except StageFailed as failure:
        return not failure.user_error
    except Exception:
        return True
    return False


# -- what dvc.yaml declares -----------------------------------------------------------------------
def _paths(entries: list[Any] | None) -> list[str]:
    """The paths of a dvc.yaml `deps`/`outs`/`metrics` list (each a string or a one-key mapping)."""
    return [next(iter(entry)) if isinstance(entry, dict) else str(entry) for entry in entries or []]


def _within(path: str, out: str) -> bool:
    return path == out or path.startswith(out.rstrip("/") + "/")


def stage_order(dvc_yaml: dict[str, Any]) -> list[str]:
    """The stages of dvc.yaml, each after every stage whose outs it depends on (file order otherwise)."""
    stages = dvc_yaml.get("stages") or {}
    produced = {
        name: _paths(spec.get("outs")) + _paths(spec.get("metrics")) + _paths(spec.get("plots"))
        for name, spec in stages.items()
    }
    needs = {
        name: {
            other
            for dep in _paths(spec.get("deps"))
            for other, outs in produced.items()
            if other != name and any(_within(dep, out) for out in outs)
        }
        for name, spec in stages.items()
    }
    order: list[str] = []
    while len(order) < len(stages):
        ready = [name for name in stages if name not in order and needs[name] <= set(order)]
        if not ready:
            raise CkdError("dvc.yaml: the stages' deps and outs form a cycle")
        order.append(ready[0])
    return order


def metrics_paths(dvc_yaml: dict[str, Any], stage: str) -> list[str]:
    """The stage's own metrics file (a plain out under metrics/) and the `metrics:` it declares (validate's
    decision figures, repeated under the same names)."""
    spec = (dvc_yaml.get("stages") or {}).get(stage, {})
    own = [path for path in _paths(spec.get("outs")) if path.startswith("metrics/") and path.endswith(".json")]
    return own + [path for path in _paths(spec.get("metrics")) if path not in own]


def data_docs_index(project_dir: str | Path, dvc_yaml: dict[str, Any]) -> Path | None:
    """The Great Expectations Data Docs page among the stages' outs, once rendered."""
    for spec in (dvc_yaml.get("stages") or {}).values():
        for out in _paths(spec.get("outs")):
            index = Path(project_dir) / out / "index.html"
            if index.is_file():
                return index.resolve()
    return None


def read_metrics(project_dir: str | Path, paths: list[str]) -> dict[str, Any]:
    import json

    merged: dict[str, Any] = {}
    for relative in paths:
        path = Path(project_dir) / relative
        if path.is_file():
            merged.update(json.loads(path.read_text()))
    return merged


# -- overrides ------------------------------------------------------------------------------------
def overridden_document(params_path: Path, overrides: dict[str, Any]) -> str:
    """params.yaml's text with the dotted `overrides` set (comments kept), validated as a whole."""
    from ruamel.yaml import YAML

    yaml_rt = YAML()
    document = yaml_rt.load(params_path.read_text())
    candidate = load_params(params_path)
    for dotted, value in overrides.items():
        for target in (document, candidate):
            node = target
            *parents, leaf = dotted.split(".")
            for key in parents:
                if key not in node or not isinstance(node[key], dict):
                    raise CkdError(f"{dotted}: no such parameter section in {params_path}")
                node = node[key]
            node[leaf] = value
    validate_all(candidate)  # a bad override fails before any stage (and any teacher call) runs
    buffer = io.StringIO()
    yaml_rt.dump(document, buffer)
    return buffer.getvalue()


def _write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def backup_path(params_path: Path) -> Path:
    return params_path.with_name(f".{params_path.name}.before-overrides")


def restore_interrupted(params_path: Path) -> bool:
    """Put back params.yaml as it was before a run with overrides that was killed before it could."""
    backup = backup_path(params_path)
    if not backup.is_file():
        return False
    _write_atomically(params_path, backup.read_text())
    backup.unlink()
    return True


@contextlib.contextmanager
def params_overridden(params_path: Path, overrides: dict[str, Any] | None) -> Iterator[None]:
    """params.yaml with `overrides` for the length of the run, then exactly as it was.

    DVC reads its params from params.yaml and records them in dvc.lock, so the stages must see the
    overrides there; afterwards the tracked file is restored byte for byte (a later plain run sees
    dvc.lock disagree with params.yaml and re-runs what the overrides changed). A backup beside it puts
    the file back at the next run if this process is killed first.
    """
    restore_interrupted(params_path)
    if not overrides:
        yield
        return
    original = params_path.read_text()
    changed = overridden_document(params_path, overrides)
    _write_atomically(backup_path(params_path), original)
    try:
        _write_atomically(params_path, changed)
        yield
    finally:
        _write_atomically(params_path, original)
        backup_path(params_path).unlink(missing_ok=True)


# -- tasks ----------------------------------------------------------------------------------------
def dvc_executable() -> str:
    beside_python = Path(sys.executable).with_name("dvc")
    return str(beside_python) if beside_python.exists() else (shutil.which("dvc") or "dvc")


def _stop(process: subprocess.Popen[str]) -> None:
    """End the stage and everything it started (DVC runs the command in a shell of its own)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stream_command(
    command: list[str], cwd: str | Path, env: dict[str, str], on_line: Callable[[str], None], timeout_s: float
) -> tuple[int, bool]:
    """Run `command`, handing each line of its output to `on_line` as soon as it is written; stop it
    (and all it started) after `timeout_s`. Returns the exit status and whether it timed out."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        _stop(process)

    watchdog = threading.Timer(timeout_s, on_timeout)
    watchdog.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip():
                on_line(line.rstrip())
        process.wait()
    finally:
        watchdog.cancel()
        _stop(process)
    return process.returncode, timed_out.is_set()


@task(retries=1, retry_delay_seconds=2, retry_condition_fn=retry_unless_user_error)
def run_stage(stage: str, project_dir: str, timeout_s: float = STAGE_TIMEOUT_S) -> dict[str, Any]:
    """`dvc repro --single-item <stage>`, its output logged line by line as it comes; returns the
    stage's metrics (the files dvc.yaml declares for it)."""
    logger = get_run_logger()
    tail: list[str] = []

    def log_line(line: str) -> None:
        logger.info(line)
        tail[:] = (tail + [line])[-5:]

    with tempfile.TemporaryDirectory(prefix="ckd-status-") as scratch:
        status_file = Path(scratch) / "status"
        # unbuffered: a stage's print()s reach the log as they happen; no progress bars in a log
        env = {**os.environ, STATUS_FILE_ENV: str(status_file), "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
        returncode, timed_out = stream_command(
            [dvc_executable(), "repro", "--single-item", stage], project_dir, env, log_line, timeout_s
        )
        stage_status = status_file.read_text().strip() if status_file.is_file() else ""
    if timed_out:
        raise StageFailed(stage, returncode, f"stopped after the task timeout of {timeout_s:g} s")
    if returncode != 0:
        if stage_status == str(USER_ERROR_EXIT) or returncode in DVC_USER_ERRORS:
            raise StageFailed(stage, USER_ERROR_EXIT, DVC_USER_ERRORS.get(returncode, " | ".join(tail)))
        raise StageFailed(stage, returncode, " | ".join(tail))
    return read_metrics(project_dir, metrics_paths(read_dvc_yaml(project_dir), stage))


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metrics_markdown(results: dict[str, dict[str, Any]]) -> str:
    lines = ["# ckd pipeline: metrics", "", "| stage | metric | value |", "|---|---|---|"]
    for stage, metrics in results.items():
        for name, value in flatten(metrics).items():
            shown = f"{value:.6g}" if isinstance(value, float) else str(value)
            lines.append(f"| {stage} | {name} | {shown} |")
    return "\n".join(lines) + "\n"


@task
def publish_artifacts(results: dict[str, dict[str, Any]], project_dir: str) -> None:
    """The metrics table as a markdown artifact and the Data Docs as a link artifact (shown in the UI)."""
    create_markdown_artifact(
        key="ckd-metrics",
        markdown=metrics_markdown(results),
        description="Metrics of every stage of this run (from the files dvc.yaml declares)",
    )
    docs = data_docs_index(project_dir, read_dvc_yaml(project_dir))
    if docs is not None:
        create_link_artifact(
            key="ckd-data-docs",
            link=docs.as_uri(),
            link_text="Great Expectations Data Docs",
            description="The check stage's validation of the teacher outputs",
        )


@flow(name="ckd-pipeline", log_prints=True)
def ckd_pipeline(
    overrides: dict[str, Any] | None = None, project_dir: str | None = None, stage_timeout_s: float = STAGE_TIMEOUT_S
) -> dict[str, Any]:
    """Run every stage of dvc.yaml in order; returns the last stage's metrics. `overrides` (dotted
    params.yaml keys) apply to this run only; `project_dir` defaults to this repository."""
    root = Path(project_dir) if project_dir else PROJECT_DIR
    params_path = root / "params.yaml"
    order = stage_order(read_dvc_yaml(root))
    results: dict[str, dict[str, Any]] = {}
    with params_overridden(params_path, overrides):
        validate_all(load_params(params_path))
        for stage in order:
            results[stage] = run_stage.with_options(name=f"stage-{stage}", timeout_seconds=stage_timeout_s + 60)(
                stage, str(root), stage_timeout_s
            )
    publish_artifacts(results, str(root))
    return results[order[-1]]


def parse_set(values: list[str]) -> dict[str, Any]:
    overrides = {}
    for item in values:
        if "=" not in item:
            raise CkdError(f"--set {item}: expected KEY=VALUE, e.g. teacher.budget=200")
        key, raw = item.split("=", 1)
        overrides[key] = yaml.safe_load(raw)
    return overrides


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description="Run the ckd pipeline with Prefect.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a params.yaml key")
    parser.add_argument("--project-dir", default=None, help="the repository (default: the one holding this flow)")
    parser.add_argument("--serve", action="store_true", help=f"serve the deployment 'ckd-nightly' ({NIGHTLY_CRON})")
    args = parser.parse_args(argv)
    root = Path(args.project_dir) if args.project_dir else PROJECT_DIR
    try:
        overrides = parse_set(args.set)
        restore_interrupted(root / "params.yaml")
        overridden_document(root / "params.yaml", overrides)  # bad input fails before a server or stage starts
        if args.serve:
            ckd_pipeline.serve(
                name="ckd-nightly",
                cron=NIGHTLY_CRON,
                global_limit=1,
                parameters={"overrides": overrides or None, "project_dir": str(root)},
            )
            return
        metrics = ckd_pipeline(overrides=overrides or None, project_dir=str(root))
        method = overrides.get("student.method") or load_params(root / "params.yaml")["student"]["method"]
    except CkdError as error:
        print(f"ckd flow: error: {error}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT) from None
    from ckd.summary import summarise

    print(summarise(metrics, method))


if __name__ == "__main__":
    main()
