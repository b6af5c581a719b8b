"""Every stage in dvc.yaml has its script, reads params that exist, and every registry name resolves."""

import json

import yaml

from ckd.config import load_params
from ckd.data.selection import SELECTIONS
from ckd.methods import METHODS
from ckd.students import STUDENTS
from ckd.teachers import TEACHERS
from tests.conftest import PROJECT

PIPELINE = ["teacher", "sample", "query", "check", "build", "train", "export", "validate"]


def lookup(params, dotted):
    node = params
    for key in dotted.split("."):
        assert isinstance(node, dict) and key in node, f"params.yaml lacks {dotted}"
        node = node[key]
    return node


def test_stages_scripts_and_params():
    dvc = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
    params = load_params(PROJECT / "params.yaml")
    assert list(dvc["stages"]) == PIPELINE
    for name, stage in dvc["stages"].items():
        assert (PROJECT / "stages" / f"{name}.py").is_file()
        assert stage["cmd"].startswith(f"python -m stages.{name} ")
        assert f"stages/{name}.py" in stage["deps"]
        for key in stage["params"]:
            lookup(params, key)
    # the store outlives every workspace and experiment: a parameter of `query`, never an output DVC may remove
    query = dvc["stages"]["query"]
    assert "teacher.store" in query["params"] and "${teacher.store}" not in json.dumps(query["outs"])


def test_registry_names_in_params_resolve():
    params = load_params(PROJECT / "params.yaml")
    assert params["student"]["method"] in METHODS
    assert params["student"]["arch"] in STUDENTS
    assert params["teacher"]["kind"] in TEACHERS
    assert params["data"]["selection"] in SELECTIONS


def test_no_phoning_home_committed():
    assert "analytics = false" in (PROJECT / ".dvc" / "config").read_text()
    makefile = (PROJECT / "Makefile").read_text()
    assert "GX_ANALYTICS_ENABLED := False" in makefile and "PREFECT_SERVER_ANALYTICS_ENABLED := false" in makefile
    assert "opt_in_out --opt_out" in makefile  # OpenVINO's telemetry
