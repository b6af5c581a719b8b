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


@pytest.mark.parametrize("registry", [METHODS, STUDENTS], ids=["methods", "students"])
def test_lazy_entries_argument_names_read_from_source_match_the_imported_factory(registry):
    """`arguments` reads a lazy entry's parameters from its module's source (no torch at validation); the
    imported factory's signature must agree, for every registered name."""
    import inspect

    for name in registry.names():
        assert registry.target(name), f"{name} is not a lazy entry"
        from_source = registry.arguments(name)
        parameters = inspect.signature(registry.get(name)).parameters.values()
        assert from_source.names == tuple(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        assert from_source.any_keyword == any(p.kind is p.VAR_KEYWORD for p in parameters)


def test_a_lazy_entry_is_imported_on_first_get_only(tmp_path, monkeypatch):
    (tmp_path / "lazy_widget.py").write_text(
        "import sys\nLOADED = True\n\nclass Base:\n    def __init__(self, size, colour='red'):\n        pass\n\n"
        "class Square(Base):\n    pass\n\ndef make(a, *, b=1, **more):\n    return (a, b)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("widget", "widget.kind", {"square": "lazy_widget:Square", "made": "lazy_widget:make"})
    assert registry.names() == ["made", "square"] and "square" in registry
    assert registry.arguments("square").names == ("size", "colour")  # the base's __init__, read from source
    assert registry.arguments("made") == type(registry.arguments("made"))(("a", "b"), True)
    import sys

    assert "lazy_widget" not in sys.modules
    assert registry.build("made", a=2) == (2, 1) and "lazy_widget" in sys.modules
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("square")(lambda: None)
    with pytest.raises(ConfigError, match="widget.kind: unknown widget 'round'; registered: made, square"):
        registry.get("round")
