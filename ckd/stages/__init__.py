"""The pipeline's stages, one module each: typed inputs -> typed outputs and a metrics dict.

`stages/<stage>.py` (the DVC entry points) parse paths, validate the params and call one function here, which
`bench` drives in memory. The stage list is dvc.yaml's (`stage_names`), a stage's metrics `metrics_path(stage)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import yaml

from ckd.errors import CkdError

METRICS_DIR = "metrics"


def read_dvc_yaml(project_dir: str | Path = ".") -> dict[str, Any]:
    """`dvc.yaml` as data: the one place Python reads the pipeline, for the Prefect flow, bench and tests."""
    path = Path(project_dir) / "dvc.yaml"
    if not path.is_file():
        raise CkdError(f"{path}: not found (project_dir must be the repository holding dvc.yaml)")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise CkdError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(document, dict) or not isinstance(document.get("stages"), dict):
        raise CkdError(f"{path}: no `stages:` mapping")
    return document


def stage_names(project_dir: str | Path = ".") -> list[str]:
    """The stages in the order dvc.yaml lists them (the one list of stages)."""
    return list(read_dvc_yaml(project_dir)["stages"])


def metrics_path(stage: str, project_dir: str | Path = ".") -> Path:
    return Path(project_dir) / METRICS_DIR / f"{stage}.json"


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CkdError(f"{path}: file not found (run the stage that writes it first)")
    try:
        return cast(dict[str, Any], json.loads(path.read_text()))
    except json.JSONDecodeError as error:
        raise CkdError(f"{path}: not valid JSON ({error})") from None
