import numpy as np
import pytest

from ckd.config import section_from_dict
from ckd.errors import CkdError, TeacherError
from ckd.query import TeacherRefused, input_hashes, run_query
from ckd.store import open_store
from ckd.teachers import build_teacher
from tests.conftest import linear_onnx_teacher
from tests.helpers.counting import computed_samples


def counting(model, tmp_path, **fields):
    config = section_from_dict(
        "teacher", {"kind": "counting", "model": str(model), "count_file": str(tmp_path / "count.log"), **fields}
    )
    return build_teacher(config)


def test_answers_each_selected_sample_once(tmp_path, onnx_teacher, digits_like):
    ids, x = digits_like
    teacher = counting(onnx_teacher, tmp_path)
    result = run_query(
        teacher, ids[:50], x[:50], 10, budget=50, store=tmp_path / "store", batch_size=16, progress=False
    )
    assert list(result.ids) == list(ids[:50])
    np.testing.assert_allclose(result.scores, teacher.predict(x[:50]), rtol=1e-6)
    assert (result.calls_this_run, result.calls_spent_total, result.teacher_outputs, result.teacher_lost) == (
        50,
        50,
        50,
        0,
    )
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


def test_a_resaved_onnx_model_is_the_same_teacher(tmp_path, onnx_teacher, digits_like):
    import onnx

    ids, x = digits_like
    model = onnx.load(str(onnx_teacher))
    model.producer_name, model.doc_string = "someone-else", "saved again"
    onnx.helper.set_model_props(model, {"note": "other metadata, other bytes"})
    onnx.save(model, str(tmp_path / "resaved.onnx"))
    assert (tmp_path / "resaved.onnx").read_bytes() != onnx_teacher.read_bytes()
    first, resaved = counting(onnx_teacher, tmp_path), counting(tmp_path / "resaved.onnx", tmp_path)
    assert first.identity == resaved.identity
    other = counting(linear_onnx_teacher(tmp_path / "other.onnx", input_shape=[1, 8, 8], seed=1), tmp_path)
    assert other.identity != first.identity  # other weights: another teacher
    run_query(first, ids[:30], x[:30], 10, budget=30, store=tmp_path / "s", progress=False)
    again = run_query(resaved, ids[:30], x[:30], 10, budget=30, store=tmp_path / "s", progress=False)
    assert again.calls_this_run == 0 and len(again.ids) == 30
    assert computed_samples(tmp_path / "count.log") == 30


def test_a_declared_identity_is_a_new_teacher_with_the_same_purse(tmp_path, onnx_teacher, digits_like):
    ids, x = digits_like
    plain = counting(onnx_teacher, tmp_path)
    declared = counting(onnx_teacher, tmp_path, identity="retrained-2026")
    assert declared.identity == f"{plain.identity}#retrained-2026"
    run_query(plain, ids[:30], x[:30], 10, budget=50, store=tmp_path / "s", progress=False)
    result = run_query(declared, ids[:30], x[:30], 10, budget=50, store=tmp_path / "s", progress=False)
    assert result.calls_this_run == 20 and result.unanswered == 10  # its own answers, but one budget for the store
    assert result.calls_spent_total == 50 and computed_samples(tmp_path / "count.log") == 50


def test_onnx_runtime_refusing_the_batch_shape_gives_the_count_back(tmp_path, digits_like):
    ids, x = digits_like
    single = linear_onnx_teacher(tmp_path / "single.onnx", input_shape=[1, 8, 8])
    import onnx

    model = onnx.load(str(single))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # takes batches of exactly one
    onnx.save(model, str(single))
    with pytest.raises(TeacherError, match=r"refused batch 1 \(its 16 calls were given back\): ONNX Runtime rejected"):
        run_query(
            counting(single, tmp_path),
            ids[:40],
            x[:40],
            10,
            budget=40,
            store=tmp_path / "s",
            batch_size=16,
            progress=False,
        )
    store = open_store(str(tmp_path / "s"))
    assert store.spent() == 0 and computed_samples(tmp_path / "count.log") == 16  # the test teacher logs, ORT refused


def test_deleted_store_rows_stop_the_next_run_before_any_call(tmp_path, onnx_teacher, digits_like):
    import sqlalchemy as sa

    ids, x = digits_like
    teacher = counting(onnx_teacher, tmp_path)
    run_query(teacher, ids[:40], x[:40], 10, budget=40, store=tmp_path / "s", batch_size=10, progress=False)
    store = open_store(str(tmp_path / "s"))
    with store.engine.begin() as connection:  # someone "cleans up" two batches and their answers
        for table in ("ckd_answers", "ckd_batch_items", "ckd_batches"):
            connection.execute(sa.text(f"DELETE FROM {table} WHERE batch IN (1, 2)"))
    store.close()
    with pytest.raises(CkdError, match="purse says 40 in 4 .batch rows were deleted or edited.*new path"):
        run_query(teacher, ids[:40], x[:40], 10, budget=40, store=tmp_path / "s", progress=False)
    assert computed_samples(tmp_path / "count.log") == 40


def test_a_failed_write_keeps_the_paid_answer_and_the_next_run_imports_it(
    tmp_path, onnx_teacher, digits_like, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    from ckd.store.base import Store

    ids, x = digits_like
    teacher = counting(onnx_teacher, tmp_path)
    monkeypatch.setattr("ckd.query.time.sleep", lambda s: None)
    real_write = Store.write_answers
    calls = []

    def disk_full(self, batch, hashes, scores, usage=None):
        calls.append(batch)
        if batch == 2:
            raise OperationalError("INSERT", {}, Exception("database or disk is full"))
        return real_write(self, batch, hashes, scores, usage)

    monkeypatch.setattr(Store, "write_answers", disk_full)
    with pytest.raises(CkdError) as error:
        run_query(teacher, ids[:40], x[:40], 10, budget=40, store=tmp_path / "s", batch_size=10, progress=False)
    message = str(error.value)
    spilled = list((tmp_path / "s" / "spill").glob("spill-*.npz"))
    assert len(spilled) == 1 and "\n" not in message
    assert (
        f"teacher.store {tmp_path / 's' / 'ckd-store.sqlite'}: cannot store the paid answer of batch 2 "
        f"(database or disk is full); it is kept in {spilled[0]} and the next run imports it" == message
    )
    assert calls.count(2) == 3  # retried before spilling
    monkeypatch.setattr(Store, "write_answers", real_write)
    result = run_query(teacher, ids[:40], x[:40], 10, budget=40, store=tmp_path / "s", batch_size=10, progress=False)
    assert len(result.ids) == 40 and result.teacher_lost == 0 and result.calls_spent_total == 40
    assert computed_samples(tmp_path / "count.log") == 40  # each input computed once: the spilled batch was reused
    assert not spilled[0].exists()


def test_ledger_cli_summary_export_and_import(tmp_path, onnx_teacher, digits_like):
    from ckd.ledger import main

    ids, x = digits_like
    teacher = counting(onnx_teacher, tmp_path)
    run_query(teacher, ids[:30], x[:30], 10, budget=30, store=tmp_path / "a", progress=False)
    for suffix in ("npz", "parquet"):
        main(["--store", str(tmp_path / "a"), "export", "--out", str(tmp_path / f"answers.{suffix}")])
        main(["--store", str(tmp_path / f"b-{suffix}"), "import", "--from", str(tmp_path / f"answers.{suffix}")])
        result = run_query(teacher, ids[:30], x[:30], 10, budget=30, store=tmp_path / f"b-{suffix}", progress=False)
        assert result.calls_this_run == 0 and len(result.ids) == 30 and result.calls_spent_total == 30
        main(["--store", str(tmp_path / f"b-{suffix}"), "import", "--from", str(tmp_path / f"answers.{suffix}")])
        assert open_store(str(tmp_path / f"b-{suffix}")).spent() == 30  # importing again costs nothing
    from ckd.ledger import summary

    text = summary(open_store(str(tmp_path / "a")), budget=20)
    name = getattr(teacher, "description", teacher.identity)  # the teacher's name beside its hash (issue 20)
    assert f"| {teacher.identity} | {name} | 30 | 30 | 0 | 0 | 0 | 0 |" in text
    assert "spent in total: 30 of teacher.budget=20; remaining 0 (spent under an earlier, larger budget" in text
    assert computed_samples(tmp_path / "count.log") == 30


def test_budget_advice_keeps_the_selection_and_raises_the_cap_by_what_it_lacks():
    """A new teacher on a store whose 120 calls went elsewhere, 240 selected, none answered, min_answered 0.5:
    keep the 240 (data.selection_size) and raise the cap by the 120 answers needed. Followed end to end in
    tests/test_budget_advice.py."""
    from ckd.stages.query import budget_advice

    assert budget_advice(0.5, spent=120, answered=0, selected=240) == (
        "set data.selection_size: 240 (keeps this selection) and raise teacher.budget to at least 240"
    )
    assert budget_advice(1.0, spent=220, answered=100, selected=240).endswith("at least 360")


def test_a_query_that_pays_nothing_writes_the_same_answers_file(tmp_path, onnx_teacher, digits_like):
    """The query stage's output holds the answers only: a second run on the same store (nothing paid, say after a
    change to the store's code) writes it byte for byte again, so `dvc repro` skips build and train; what did
    change (calls_this_run) is in the stage's metrics, which export and validate read."""
    from ckd.data import Pool, Selection
    from ckd.metrics import write_metrics
    from ckd.query import read_accounting
    from ckd.stages.query import query

    ids, x = digits_like
    pool = Pool(ids=ids, x=x, class_names=tuple(str(c) for c in range(10)), is_image=True)
    fields = {"budget": 50, "store": str(tmp_path / "store")}
    teacher = section_from_dict(
        "teacher", {"kind": "counting", "model": str(onnx_teacher), "count_file": str(tmp_path / "n.log"), **fields}
    )
    answers, calls = [], []
    for run in range(2):
        queried, metrics = query(teacher, pool, Selection(ids=ids[:50]), progress=False)
        queried.save(tmp_path / f"queried-{run}.npz")
        write_metrics(tmp_path / f"query-{run}.json", metrics)
        answers.append((tmp_path / f"queried-{run}.npz").read_bytes())
        calls.append(read_accounting(tmp_path / f"query-{run}.json")["calls_this_run"])
    assert answers[0] == answers[1] and calls == [50, 0]
    assert computed_samples(tmp_path / "n.log") == 50


def test_the_accounting_is_refused_in_one_line_when_the_file_is_not_the_query_stages_metrics(tmp_path):
    from ckd.query import read_accounting

    partial = tmp_path / "query.json"
    partial.write_text('{"budget": 5, "calls_spent_total": 3}')
    with pytest.raises(CkdError, match=r"query\.json: not the query stage's metrics \(no calls_this_run, teacher_"):
        read_accounting(partial)
    with pytest.raises(CkdError, match=r"absent\.json: not the query stage's metrics .*run the query stage first"):
        read_accounting(tmp_path / "absent.json")


@pytest.mark.parametrize("budget", [20, 10])
def test_inputs_held_at_the_first_check_and_free_at_the_second_are_asked_while_budget_remains(
    tmp_path, onnx_teacher, digits_like, monkeypatch, budget
):
    """Another run held these inputs when the pass began, and its batch closed without an answer (its run died,
    or the batch was lost or refused) before the check that follows a pass that sent nothing: they are asked
    again while budget remains, and nothing is sent once it is spent."""
    ids, x = digits_like
    teacher = counting(onnx_teacher, tmp_path)
    store = open_store(str(tmp_path / "s"))
    run_query(teacher, ids[:10], x[:10], 10, budget=10, store=store, progress=False)  # 10 of the budget spent
    checks: list[int] = []

    def held_then_free(teacher_identity, hashes, run):
        hashes = list(hashes)
        checks.append(len(hashes))
        return set(hashes) if len(checks) == 1 else set()

    monkeypatch.setattr(store, "held_elsewhere", held_then_free)
    try:
        result = run_query(teacher, ids[10:20], x[10:20], 10, budget=budget, store=store, progress=False)
    finally:
        store.close()
    assert checks[:2] == [10, 10]  # held at the first check, free at the second
    if budget == 20:
        assert result.calls_this_run == 10 and result.unanswered == 0 and result.calls_spent_total == 20
        assert list(result.ids) == list(ids[10:20])
        assert computed_samples(tmp_path / "count.log") == 20
    else:
        assert result.calls_this_run == 0 and result.unanswered == 10 and result.calls_spent_total == 10
        assert computed_samples(tmp_path / "count.log") == 10  # nothing sent
