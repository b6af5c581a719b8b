"""The text benchmark runs the example's configuration: its settings come from examples/ag_news/params.yaml
unless an option says otherwise, and `default` is that file's own student section."""

from bench.recipes import TEXT_DEFAULT_RECIPE
from bench.text import (
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
    for variant in (DEFAULT_VARIANT, TEXT_DEFAULT_RECIPE, "ce"):
        row = {**overrides, "seed": 0, "student.seed": 0, **student_overrides(variant, base)}
        jobs.append({"variant": variant, "data": "d.npz", "params": with_overrides(base, row).as_dict()})
    unique, of, same = same_configuration(jobs)
    # the example runs the text default recipe (chosen on the dev split): `default` and it are one configuration
    assert [j["variant"] for j in unique] == [DEFAULT_VARIANT, "ce"] and of == {0: 0, 1: 0, 2: 1}
    assert same == {TEXT_DEFAULT_RECIPE: DEFAULT_VARIANT}


def test_a_recipe_row_never_inherits_the_pool_settings_of_the_params_it_runs_on():
    """The example's params propagate labels to the pool; the consistency and no-pool recipes must not."""
    base, _ = base_params(parse_args([]))
    assert base.student.unlabelled_targets == "neighbours"  # the example (the text default)
    pool = with_overrides(base, student_overrides("kd_corrupt_pool", base)).student
    assert (pool.unlabelled_targets, pool.unlabelled_weight) == ("self", 1.0)
    assert with_overrides(base, student_overrides("kd_corrupt", base)).student.unlabelled_weight == 0.0
    k5 = with_overrides(base, student_overrides("kd_corrupt_prop_k5", base)).student
    assert (k5.unlabelled_targets, k5.unlabelled_neighbours) == ("neighbours", 5)


def test_the_text_bench_selects_with_the_params_strategy_nested_over_budgets():
    """Any registered (nested) selection: the first N picks of the largest budget are the pipeline's picks for N."""
    import numpy as np

    from ckd.data import select_for_teacher
    from ckd.data.selection import SELECTIONS

    x = np.random.default_rng(0).normal(size=(400, 12)).astype(np.float32)
    ids = np.arange(400) * 3
    order = ids[SELECTIONS.get("typiclust")(x, 90, np.random.default_rng(2))]
    for budget in (30, 90):
        assert np.array_equal(np.sort(order[:budget]), select_for_teacher(ids, x, budget, "typiclust", 2))
    base, _ = base_params(parse_args(["--selection", "typiclust"]))
    assert base.data.selection == "typiclust"
