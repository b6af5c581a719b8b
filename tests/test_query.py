import numpy as np
import pytest

from ckd.errors import TeacherError
from ckd.query import TeacherRefused, input_hashes, run_query
from ckd.store import open_store
from ckd.config import TeacherConfig
from ckd.teachers import build_teacher
from ckd.teachers.counting import computed_samples
from tests.conftest import linear_onnx_teacher


def counting(model, tmp_path, **options):
    config = TeacherConfig(kind="counting", model=str(model), options={"count_file": str(tmp_path / "count.log"),
                                                                       **options})
    return build_teacher(config)


def test_answers_each_selected_sample_once(tmp_path, onnx_teacher, digits_like):
    ids, x = digits_like
    teacher = counting(onnx_teacher, tmp_path)
    result = run_query(teacher, ids[:50], x[:50], 10, budget=50, store=tmp_path / "store", batch_size=16,
                       progress=False)
    assert list(result.ids) == list(ids[:50])
    np.testing.assert_allclose(result.scores, teacher.predict(x[:50]), rtol=1e-6)
    assert (result.calls_this_run, result.calls_spent_total, result.teacher_outputs, result.teacher_lost) == (50, 50, 50, 0)
    assert result.fresh_store
    assert computed_samples(tmp_path / "count.log") == 100  # 50 in the run + 50 in the check above
    # a re-run (say, after a change downstream) costs nothing
    again = run_query(teacher, ids[:50], x[:50], 10, budget=50, store=tmp_path / "store", progress=False)
    assert again.calls_this_run == 0 and len(again.ids) == 50 and not again.fresh_store
    # a larger selection under a larger budget asks only about the new inputs
    more = run_query(teacher, ids[:70], x[:70], 10, budget=70, store=tmp_path / "store", progress=False)
    assert more.calls_this_run == 20 and more.calls_spent_total == 70


def test_budget_is_a_hard_cap_on_new_selections(tmp_path, onnx_teacher, digits_like):
    ids, x = digits_like
    teacher = counting(onnx_teacher, tmp_path)
    run_query(teacher, ids[:40], x[:40], 10, budget=40, store=tmp_path / "s", progress=False)
    # the same budget, a different selection: only what is already paid for comes back
    result = run_query(teacher, ids[20:60], x[20:60], 10, budget=40, store=tmp_path / "s", progress=False)
    assert result.calls_spent_total == 40 and result.calls_this_run == 0
    assert result.unanswered == 20 and list(result.ids) == list(ids[20:40])
    assert computed_samples(tmp_path / "count.log") == 40


def test_lost_batch_is_asked_again_only_while_budget_remains(tmp_path, onnx_teacher, digits_like):
    ids, x = digits_like
    teacher = counting(onnx_teacher, tmp_path)
    store = open_store(str(tmp_path / "s"))
    run = store.open_run(teacher.identity, "test")
    store.reserve(teacher.identity, run, [int(i) for i in ids[:10]], input_hashes(x[:10]), budget=30)
    store.close_run(run)  # sent, then the run ended with no answer
    result = run_query(teacher, ids[:20], x[:20], 10, budget=25, store=store, batch_size=8, progress=False)
    assert result.calls_spent_total == 25 and result.teacher_lost == 10
    assert result.unanswered == 5  # 10 lost + 10 new needed 20 more calls, only 15 remained
    assert computed_samples(tmp_path / "count.log") == 15


def test_mismatched_teacher_fails_before_any_call(tmp_path, digits_like):
    ids, x = digits_like
    wide = linear_onnx_teacher(tmp_path / "wide.onnx", features=100, input_shape=[100])
    with pytest.raises(TeacherError, match="takes 100 values per sample"):
        run_query(counting(wide, tmp_path), ids, x, 10, budget=10, store=tmp_path / "s", progress=False)
    eleven = linear_onnx_teacher(tmp_path / "eleven.onnx", classes=11)
    with pytest.raises(TeacherError, match="has 11 classes, the data has 10"):
        run_query(counting(eleven, tmp_path), ids, x, 10, budget=10, store=tmp_path / "s", progress=False)
    assert computed_samples(tmp_path / "count.log") == 0


class GarbageTeacher:
    identity = "garbage"
    num_classes = None

    def check_fits(self, sample_shape, num_classes):
        pass

    def predict(self, x):
        return np.zeros((len(x), 3), np.float32)


class RefusingTeacher(GarbageTeacher):
    identity = "refusing"

    def predict(self, x):
        raise TeacherRefused("HTTP 429: slow down")


def test_garbage_is_quarantined_and_counted(tmp_path, digits_like):
    ids, x = digits_like
    with pytest.raises(TeacherError, match=r"expected \(16, 10\); raw answer kept in the store"):
        run_query(GarbageTeacher(), ids[:40], x[:40], 10, budget=40, store=tmp_path, batch_size=16, progress=False)
    summary = open_store(str(tmp_path)).summary("garbage")
    assert summary.spent == 16 and summary.rejected == 16  # it was computed: it stays paid


def test_refusal_gives_the_count_back(tmp_path, digits_like):
    ids, x = digits_like
    with pytest.raises(TeacherError, match="refused"):
        run_query(RefusingTeacher(), ids[:10], x[:10], 10, budget=10, store=tmp_path, progress=False)
    store = open_store(str(tmp_path))
    assert store.spent() == 0 and store.summary("refusing").refused == 10
