"""The text example (`examples/ag_news`): every stage has its script and its module, reads params that
exist, declares its metrics file, and its params are valid for every section."""

import json

import yaml

from ckd.config import load_params, validate_all
from ckd.methods import METHODS
from ckd.students import STUDENTS
from ckd.teachers import TEACHERS
from tests.conftest import PROJECT
from tests.test_contract import lookup

EXAMPLE = PROJECT / "examples" / "ag_news"
PIPELINE = ["download", "embed", "sample", "query", "check", "build", "train", "export_text", "validate_text"]


def test_text_example_stages_scripts_and_params():
    dvc = yaml.safe_load((EXAMPLE / "dvc.yaml").read_text())
    params = load_params(EXAMPLE / "params.yaml")
    validated = validate_all(params)
    assert list(dvc["stages"]) == PIPELINE
    for name, stage in dvc["stages"].items():
        assert (PROJECT / "stages" / f"{name}.py").is_file() and (PROJECT / "ckd" / "stages" / f"{name}.py").is_file()
        assert stage["cmd"].startswith(f"python -m stages.{name} ")
        assert f"../../stages/{name}.py" in stage["deps"] and f"../../ckd/stages/{name}.py" in stage["deps"]
        for dep in stage["deps"]:
            assert not dep.startswith("../../") or (EXAMPLE / dep).exists(), dep
        for key in stage["params"]:
            lookup(params, key)
        # the stage script writes metrics/<stage>.json (train: DVCLive's folder); DVC must expect that file
        declared = [
            next(iter(m)) if isinstance(m, dict) else m for m in stage.get("metrics", []) + stage.get("outs", [])
        ]
        expected = "metrics/train/metrics.json" if name == "train" else f"metrics/{name}.json"
        assert [p for p in declared if str(p).endswith(".json") and str(p).startswith("metrics/")] == [expected], name
    # the store outlives every workspace and experiment: a parameter of `query`, never an output
    assert "teacher" in dvc["stages"]["query"]["params"] and "teacher_outputs" not in json.dumps(dvc)
    assert validated.teacher.kind == "openai" and validated.teacher.kind in TEACHERS
    assert validated.student.method in METHODS and validated.student.arch in STUDENTS
    assert len(validated.teacher.label_words) == 4 and validated.data.text == ("title", "description")
