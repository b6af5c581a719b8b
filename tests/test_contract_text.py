"""The text example (`examples/ag_news`) runs through the root dvc.yaml: its params.yaml is a valid params file
for every section, holds every key the root pipeline's stages depend on, and the folder holds no pipeline of
its own."""

import yaml

from ckd.config import load_params, validate_all
from ckd.methods import METHODS
from ckd.students import STUDENTS
from ckd.teachers import TEACHERS
from tests.conftest import PROJECT
from tests.test_contract import lookup

EXAMPLE = PROJECT / "examples" / "ag_news"


def test_text_example_params_drive_the_root_pipeline():
    dvc = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
    params = load_params(EXAMPLE / "params.yaml")
    validated = validate_all(params)
    assert not (EXAMPLE / "dvc.yaml").exists() and not (EXAMPLE / "dvc.lock").exists()
    assert list(dvc["stages"])[:5] == [
        "download",
        "source",
        "standin",
        "teacher",
        "embed",
    ]  # text is a source like the others
    for stage in dvc["stages"].values():
        for key in stage.get("params", []):
            if key != "seed":
                lookup(params, key.split(".")[0])  # a section the example sets (a key in it may keep its default)
    assert "data/embedded.npz" in dvc["stages"]["sample"]["deps"] and "--embedded" in dvc["stages"]["sample"]["cmd"]
    assert validated.teacher.kind == "openai" and validated.teacher.kind in TEACHERS
    assert validated.student.method in METHODS and validated.student.arch in STUDENTS
    assert len(validated.teacher.label_words) == 4 and validated.data.text == ("title", "description")
    run = (EXAMPLE / "run.sh").read_text()
    assert "dvc repro" in run and 'cd "$ROOT"' in run  # the root pipeline, from the root
