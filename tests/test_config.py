import pytest

from ckd.config import load_params, load_section, section_from_dict, validate_all
from ckd.errors import CkdError, ConfigError
from tests.conftest import PROJECT


def test_committed_params_are_valid():
    validate_all(load_params(PROJECT / "params.yaml"))


@pytest.mark.parametrize("section,values,parameter", [
    ("teacher", {"budget": 0}, "teacher.budget"),
    ("teacher", {"budget": 2.5}, "teacher.budget"),
    ("teacher", {"scores": "softmax"}, "teacher.scores"),
    ("student", {"lr": [0.1, -1]}, "student.lr"),
    ("student", {"val_fraction": 1.0}, "student.val_fraction"),
    ("student", {"augment": "rotate"}, "student.augment"),
    ("student", {"threads": 0}, "student.threads"),
    ("student", {"threads": "many"}, "student.threads"),
    ("student", {"precision": "fp16"}, "student.precision"),
    ("comparative", {"group_size": 0}, "comparative.group_size"),
    ("validate", {"min_accuracy": 1.5}, "validate.min_accuracy"),
    ("export", {"opset": 7}, "export.opset"),
    ("data", {"test_size": -3}, "data.test_size"),
])
def test_out_of_range_names_the_parameter(section, values, parameter):
    with pytest.raises(ConfigError) as error:
        section_from_dict(section, values)
    assert str(error.value).startswith(parameter + ":")
    assert "\n" not in str(error.value)


def test_unknown_key_lists_allowed():
    with pytest.raises(ConfigError, match=r"student.lerning_rate: unknown parameter; allowed: .*lr"):
        section_from_dict("student", {"lerning_rate": 0.1})


def test_missing_and_malformed_params_file(tmp_path):
    with pytest.raises(CkdError, match="not found"):
        load_section("teacher", tmp_path / "absent.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("teacher: [unclosed\n")
    with pytest.raises(CkdError, match="params.yaml: not valid YAML"):
        load_section("teacher", bad)


def test_lr_scalar_becomes_grid():
    assert section_from_dict("student", {"lr": 0.01}).lr == (0.01,)
