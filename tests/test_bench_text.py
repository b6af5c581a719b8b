"""The text benchmark runs the example's configuration: its settings come from examples/ag_news/params.yaml
unless an option says otherwise, and `default` is that file's own student section."""

from ckd.bench.text import (
    DEFAULT_VARIANT,
    EXAMPLE_PARAMS,
    base_params,
    parse_args,
    same_configuration,
    student_overrides,
)
from ckd.config import load_config, with_overrides


def test_defaults_are_the_example_params():
    example = load_config(EXAMPLE_PARAMS)
    base, overrides = base_params(parse_args([]))
    assert overrides == {"student.device": "cpu", "student.threads": 1}  # nothing else is the benchmark's own
    assert base.student.steps == example.student.steps and base.student.lr == example.student.lr
    assert base.student.arch_args == example.student.arch_args and base.student.augment == example.student.augment
    assert base.comparative == example.comparative and base.data == example.data
    assert student_overrides(DEFAULT_VARIANT, base) == {}
    # an option given overrides the file
    changed, _ = base_params(parse_args(["--steps", "7", "--lr", "0.1"]))
    assert changed.student.steps == 7 and changed.student.lr == (0.1,)


def test_a_variant_with_the_defaults_configuration_is_trained_once():
    base, overrides = base_params(parse_args([]))
    jobs = []
    for variant in (DEFAULT_VARIANT, "ckd", "kd"):
        row = {**overrides, "seed": 0, "student.seed": 0, **student_overrides(variant, base)}
        jobs.append({"variant": variant, "data": "d.npz", "params": with_overrides(base, row).as_dict()})
    unique, of, same = same_configuration(jobs)
    assert base.student.method == "ckd"  # the example's method: `default` and `ckd` are one configuration
    assert [j["variant"] for j in unique] == [DEFAULT_VARIANT, "kd"] and of == {0: 0, 1: 0, 2: 1}
    assert same == {"ckd": DEFAULT_VARIANT}
