import pytest

from ckd.errors import ConfigError
from ckd.methods import METHODS
from ckd.registry import Registry
from ckd.students import STUDENTS
from ckd.teachers import TEACHERS


def test_build_and_unknown_name_lists_registered():
    registry = Registry("widget", "widget.kind")

    @registry.register("round")
    def make_round(size=1):
        return ("round", size)

    assert registry.build("round", size=3) == ("round", 3)
    with pytest.raises(ConfigError, match=r"widget.kind: unknown widget 'square'; registered: round"):
        registry.build("square")
    with pytest.raises(ConfigError, match="widget.kind"):
        registry.build("round", colour="red")
    with pytest.raises(ValueError):
        registry.register("round")(make_round)


def test_project_registries_hold_the_documented_names():
    assert set(METHODS.names()) == {"ce", "kd", "kd_mse", "mixup", "rkd", "dist", "ckd_paper", "ckd", "ckd_kd"}
    assert {"mlp", "cnn"} <= set(STUDENTS.names())
    assert {"onnx", "counting"} <= set(TEACHERS.names())
    with pytest.raises(ConfigError, match="student.method: unknown method 'nope'; registered: ce, ckd"):
        METHODS.get("nope")
