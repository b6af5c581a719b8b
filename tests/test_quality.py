import numpy as np
import pytest

from ckd.errors import QualityError
from ckd.quality import ScoreExpectations, check_teacher_outputs

POOL = np.arange(100)


def spec(rows=20, probabilities=False, budget=20):
    return ScoreExpectations(
        expected_rows=rows, budget=budget, pool_ids=POOL, num_classes=10, probabilities=probabilities
    )


def logits(rows=20, seed=0):
    return np.random.default_rng(seed).normal(size=(rows, 10)).astype(np.float32)


def test_clean_outputs_pass():
    summary = check_teacher_outputs(POOL[:20], logits(), spec(), "queried.npz")
    assert summary["success"] and summary["failed"] == 0 and summary["expectations"] >= 7


def test_nan_rows_fail_naming_the_expectation_and_artifact():
    scores = logits()
    scores[3, 2] = np.nan
    with pytest.raises(QualityError) as error:
        check_teacher_outputs(POOL[:20], scores, spec(), "data/queried.npz")
    lines = str(error.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("data/queried.npz: failed expect_column_values_to_be_in_set {'column': 'row_is_finite'")


def test_each_broken_property_is_reported_once():
    ids = POOL[:20].copy()
    ids[1] = ids[0]  # duplicate
    ids[2] = 500  # not in the pool
    scores = np.tile(logits(1), (20, 1))  # every row identical
    with pytest.raises(QualityError) as error:
        check_teacher_outputs(ids, scores, spec(rows=21, budget=19), "q.npz")
    message = str(error.value)
    for expectation in (
        "expect_table_row_count_to_equal",
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_be_unique",
        "'column': 'id'",
        "expect_column_unique_value_count_to_be_between",
    ):
        assert expectation in message
    assert "expect_column_values_to_be_in_set {'column': 'id_in_pool'}" in message
    assert len(message.splitlines()) == 5


def test_an_all_zero_teacher_fails_even_with_negative_zeros():
    """-0.0 and 0.0 differ in their bytes, not in value: an all-zero teacher is one row repeated."""
    scores = np.zeros((20, 10), np.float32)
    scores[::2] = -0.0
    assert len({row.tobytes() for row in scores}) == 2  # by bytes it would pass
    with pytest.raises(QualityError, match="expect_column_unique_value_count_to_be_between"):
        check_teacher_outputs(POOL[:20], scores, spec(), "q.npz")


def test_width_and_probabilities():
    with pytest.raises(QualityError, match="expect_table_column_count_to_equal"):
        check_teacher_outputs(POOL[:20], logits()[:, :9], spec(), "q.npz")
    probs = np.exp(logits()) / np.exp(logits()).sum(1, keepdims=True)
    check_teacher_outputs(POOL[:20], probs, spec(probabilities=True), "q.npz")
    with pytest.raises(QualityError, match="row_sum"):
        check_teacher_outputs(POOL[:20], probs * 1.1, spec(probabilities=True), "q.npz")


def test_data_docs_rendered_and_named_on_failure(tmp_path):
    scores = logits()
    scores[0, 0] = np.inf
    with pytest.raises(QualityError) as error:
        check_teacher_outputs(POOL[:20], scores, spec(), "q.npz", docs_dir=tmp_path / "docs")
    last = str(error.value).splitlines()[-1]
    assert last == f"q.npz: Great Expectations Data Docs: {tmp_path / 'docs' / 'index.html'}"
    assert (tmp_path / "docs" / "index.html").is_file()
    assert list((tmp_path / "docs" / "validations").rglob("*.html"))
