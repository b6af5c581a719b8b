"""The pipeline as a Prefect flow: each DVC stage is a task that runs `dvc repro --single-item <stage>`.

DVC decides what is up to date (a task over an unchanged stage returns at once) and keeps lineage;
Prefect adds retries, schedules, logs and the UI. A stage that exits 2 failed on bad input and is not
retried; any other failure (a crash, a kill) is retried once, which is safe for `query` because the
budget store (ckd.store), not Prefect, decides what may be sent again.

    python -m flows.pipeline                       # run once, parameters from params.yaml
    python -m flows.pipeline --set teacher.budget=200 --set student.method=kd
    python -m flows.pipeline --serve               # serve the nightly deployment (cron below)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger, task

from ckd.config import load_params, validate_all
from ckd.errors import CkdError

STAGES = ("teacher", "sample", "query", "check", "build", "train", "export", "validate")
USER_ERROR_EXIT = 2
NIGHTLY_CRON = "0 3 * * *"


class StageFailed(Exception):
    def __init__(self, stage: str, returncode: int, tail: str):
        self.stage, self.returncode = stage, returncode
        super().__init__(f"stage {stage} exited {returncode}: {tail}")


def retry_unless_user_error(task_obj, task_run, state) -> bool:
    """Retry crashes and kills; never a stage that rejected its input (exit 2)."""
    try:
        state.result()
    except StageFailed as failure:
        return failure.returncode != USER_ERROR_EXIT
    except Exception:
        return True
    return False


def dvc_executable() -> str:
    beside_python = Path(sys.executable).with_name("dvc")
    return str(beside_python) if beside_python.exists() else (shutil.which("dvc") or "dvc")


@task(retries=1, retry_delay_seconds=2, retry_condition_fn=retry_unless_user_error)
def run_stage(stage: str, project_dir: str) -> dict[str, Any]:
    """`dvc repro --single-item <stage>`; returns the stage's metrics."""
    logger = get_run_logger()
    completed = subprocess.run([dvc_executable(), "repro", "--single-item", stage], cwd=project_dir,
                               capture_output=True, text=True)
    for line in (completed.stdout + completed.stderr).splitlines():
        if line.strip() and "%|" not in line:  # progress bars belong to a terminal, not the log
            logger.info(line)
    if completed.returncode != 0:
        errors = [line for line in completed.stderr.splitlines() if "error:" in line]
        code = USER_ERROR_EXIT if any(line.startswith(f"ckd {stage}: error:") for line in errors) else completed.returncode
        raise StageFailed(stage, code, " | ".join(errors[-3:]) or completed.stderr.strip()[-500:])
    metrics = Path(project_dir) / "metrics" / f"{stage}.json"
    return json.loads(metrics.read_text()) if metrics.exists() else {}


def apply_overrides(params_path: Path, overrides: dict[str, Any], dry_run: bool = False) -> None:
    """Set dotted keys in params.yaml (as `dvc exp run -S` does), keeping its comments; validate first.
    With `dry_run`, only validate."""
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
    if dry_run:
        return
    with open(params_path, "w") as handle:
        yaml_rt.dump(document, handle)


@flow(name="ckd-pipeline", log_prints=True)
def ckd_pipeline(overrides: dict[str, Any] | None = None, project_dir: str = ".") -> dict[str, Any]:
    """Run every stage in order. `overrides` sets params.yaml keys (dotted) first; by default the
    parameters are params.yaml's."""
    params_path = Path(project_dir) / "params.yaml"
    if overrides:
        apply_overrides(params_path, overrides)
    validate_all(load_params(params_path))
    results: dict[str, Any] = {}
    for stage in STAGES:
        results[stage] = run_stage.with_options(name=f"stage-{stage}")(stage, project_dir)
    return results["validate"]


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
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--serve", action="store_true", help=f"serve the deployment 'ckd-nightly' ({NIGHTLY_CRON})")
    args = parser.parse_args(argv)
    try:
        overrides = parse_set(args.set)
        # Reject bad input before a server starts or a stage runs.
        apply_overrides(Path(args.project_dir) / "params.yaml", overrides, dry_run=True)
        if args.serve:
            ckd_pipeline.serve(name="ckd-nightly", cron=NIGHTLY_CRON,
                               parameters={"overrides": overrides or None, "project_dir": args.project_dir})
            return
        metrics = ckd_pipeline(overrides=overrides or None, project_dir=args.project_dir)
    except CkdError as error:
        print(f"ckd flow: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    from ckd.summary import summarise

    print(summarise(metrics))


if __name__ == "__main__":
    main()
