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


def test_nan_rows_fail_in_one_line_naming_the_cause_and_artifact():
    scores = logits()
    scores[3, 2] = np.nan
    with pytest.raises(QualityError) as error:
        check_teacher_outputs(POOL[:20], scores, spec(), "data/queried.npz")
    lines = str(error.value).splitlines()
    assert len(lines) == 1
    assert lines[0] == "data/queried.npz: 1 of 20 rows hold NaN or infinite scores"


def test_each_broken_property_is_named_once_in_one_line():
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
        "expect_column_values_to_be_unique(id)",
        "expect_column_values_to_be_in_set(id_in_pool)",
        "expect_column_unique_value_count_to_be_between(row_fingerprint)",
    ):
        assert message.count(expectation) == 1, message
    assert message.startswith(
        "q.npz: failed expect_table_row_count_to_equal {'value': 21} (observed 20); also failed: "
    )
    assert len(message.splitlines()) == 1


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
    with pytest.raises(QualityError, match=r"^q.npz: 20 of 20 rows do not sum to 1 \(observed sums 1.1 to 1.1\)"):
        check_teacher_outputs(POOL[:20], probs * 1.1, spec(probabilities=True), "q.npz")


@pytest.mark.parametrize(
    "scores,words",
    [
        (logits(), "rows have scores outside [0, 1] (from -"),
        (
            np.full((20, 10), 0.3) + np.arange(20)[:, None] * 1e-3,
            "20 of 20 rows do not sum to 1 (observed sums 3 to 3.19)",
        ),
    ],
    ids=["logits-as-probabilities", "rows-sum-to-3"],
)
def test_probability_failures_are_one_line_naming_the_likely_cause(scores, words, tmp_path):
    with pytest.raises(QualityError) as error:
        check_teacher_outputs(POOL[:20], scores, spec(probabilities=True), "q.npz", docs_dir=tmp_path / "docs")
    (line,) = str(error.value).splitlines()
    assert words in line and "also failed" not in line, line
    assert line.endswith(f"; Great Expectations Data Docs: {tmp_path / 'docs' / 'index.html'}")
    if "outside" in words:
        assert "the teacher most likely gives logits (set teacher.scores: logits)" in line


def test_data_docs_rendered_and_named_on_failure(tmp_path):
    scores = logits()
    scores[0, 0] = np.inf
    with pytest.raises(QualityError) as error:
        check_teacher_outputs(POOL[:20], scores, spec(), "q.npz", docs_dir=tmp_path / "docs")
    (line,) = str(error.value).splitlines()
    docs = tmp_path / "docs" / "index.html"
    assert line == f"q.npz: 1 of 20 rows hold NaN or infinite scores; Great Expectations Data Docs: {docs}"
    assert (tmp_path / "docs" / "index.html").is_file()
    assert list((tmp_path / "docs" / "validations").rglob("*.html"))
