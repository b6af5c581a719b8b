"""dvc.yaml, stages/, ckd/stages/ and params.yaml agree; every registry name in params.yaml resolves."""

import json

import yaml

from ckd.config import load_config, load_params
from ckd.data.selection import SELECTIONS
from ckd.methods import METHODS
from ckd.stages import metrics_path, stage_names
from ckd.students import STUDENTS
from ckd.teachers import TEACHERS
from tests.conftest import PROJECT


def lookup(params, dotted):
    node = params
    for key in dotted.split("."):
        assert isinstance(node, dict) and key in node, f"params.yaml lacks {dotted}"
        node = node[key]
    return node


def test_dvc_yaml_stages_scripts_modules_and_params_agree():
    dvc = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
    params = load_params(PROJECT / "params.yaml")
    names = stage_names(PROJECT)
    assert names[:4] == ["download", "source", "standin", "teacher"] and names[-1] == "validate"
    modules = {p.stem for p in (PROJECT / "ckd" / "stages").glob("*.py") if not p.stem.startswith("_")}
    # one dvc.yaml for every modality, one module per stage (its function and its entry point): no other
    assert modules == set(names)
    assert not (PROJECT / "stages").exists()  # no second layer of stage scripts
    for name, stage in dvc["stages"].items():
        assert stage["cmd"].startswith(f"python -m ckd.stages.{name} ")
        assert f"ckd/stages/{name}.py" in stage["deps"]
        for key in stage.get("params", []):
            lookup(params, key)
        # each stage writes its own metrics file, a plain out; the decision figures experiments are compared by
        # are the one `metrics:` file (validate's metrics/decision.json, tests/test_exps.py)
        declared = [next(iter(m)) if isinstance(m, dict) else m for m in stage["outs"]]
        json_files = [path for path in declared if str(path).endswith(".json") and str(path).startswith("metrics/")]
        expected = "metrics/train/metrics.json" if name == "train" else str(metrics_path(name))  # DVCLive's folder
        assert json_files == [expected], f"{name}: its metrics file is not {expected}"
    # the store outlives every workspace and experiment: never an output DVC may remove. `query` follows the
    # teacher through the teacher stage's fingerprint (store and url without secrets), never the teacher params
    query = dvc["stages"]["query"]
    assert "models/teacher.json" in query["deps"] and "${teacher.store}" not in json.dumps(query["outs"])
    for stage in dvc["stages"].values():
        assert not {"teacher", "teacher.store", "teacher.url"} & set(stage.get("params", []))


def test_registry_names_in_params_resolve():
    params = load_config(PROJECT / "params.yaml")  # validates them against the registries
    assert params.student.method in METHODS and params.student.arch in STUDENTS
    assert params.teacher.kind in TEACHERS and params.data.selection in SELECTIONS
    # each registered backend brings its own config model, told apart by `kind`
    assert {TEACHERS.get(name).config_model.model_fields["kind"].default for name in TEACHERS.names()} == set(
        TEACHERS.names()
    )


def test_no_phoning_home_committed():
    assert "analytics = false" in (PROJECT / ".dvc" / "config").read_text()
    makefile = (PROJECT / "Makefile").read_text()
    assert "GX_ANALYTICS_ENABLED := False" in makefile and "PREFECT_SERVER_ANALYTICS_ENABLED := false" in makefile
    assert "opt_in_out --opt_out" in makefile  # OpenVINO's telemetry
