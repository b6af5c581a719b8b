"""The text example (`examples/ag_news`): every stage has its script, reads params that exist, and its
params are valid for every section."""

import yaml

from ckd.config import load_params, validate_all
from ckd.methods import METHODS
from ckd.students import STUDENTS
from ckd.teachers import TEACHERS
from tests.conftest import PROJECT
from tests.test_contract import lookup

EXAMPLE = PROJECT / "examples" / "ag_news"
PIPELINE = ["embed", "sample", "query", "check", "build", "train", "export_text", "validate_text"]


def test_text_example_stages_scripts_and_params():
    dvc = yaml.safe_load((EXAMPLE / "dvc.yaml").read_text())
    params = load_params(EXAMPLE / "params.yaml")
    validate_all(params)
    assert list(dvc["stages"]) == PIPELINE
    for name, stage in dvc["stages"].items():
        assert (PROJECT / "stages" / f"{name}.py").is_file()
        assert stage["cmd"].startswith(f"python -m stages.{name} ")
        assert f"../../stages/{name}.py" in stage["deps"]
        for dep in stage["deps"]:
            assert not dep.startswith("../../") or (EXAMPLE / dep).exists(), dep
        for key in stage["params"]:
            lookup(params, key)
        # the stage script writes metrics/<stage>.json unless told otherwise; DVC must expect that file
        assert [next(iter(m)) for m in stage["metrics"]] == [f"metrics/{name}.json"] or "--metrics" in stage["cmd"]
    assert dvc["stages"]["query"]["outs"][0]["${teacher.store}"]["persist"] is True
    assert params["teacher"]["kind"] == "openai" and params["teacher"]["kind"] in TEACHERS
    assert params["student"]["method"] in METHODS and params["student"]["arch"] in STUDENTS
    assert len(params["teacher"]["label_words"]) == 4
