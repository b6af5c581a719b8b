"""Tokens in the store: each answer's tokens (an LLM teacher's `usage`) are stored with its batch, under both
backends; their totals equal what the query stage's metrics said; a store from before the token columns
opens, gains them, and keeps working."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa

from ckd.config import section_from_dict
from ckd.data import Pool, Selection
from ckd.errors import TeacherError
from ckd.ledger import summary
from ckd.stages.query import query
from ckd.store import open_store
from examples.ag_news.llm_server import StandinLLMServer, TextClassifierLLM
from tests.helpers.fault_proxy import at
from tests.helpers.text import LABEL_WORDS, synthetic_texts

MODEL = "standin-llm"


@pytest.fixture(scope="module")
def llm():
    texts, labels = synthetic_texts(300, seed=1)
    return TextClassifierLLM(texts, labels, LABEL_WORDS)


def settings(url: str, store: str, budget: int):
    return section_from_dict(
        "teacher",
        {
            "kind": "openai",
            "url": url,
            "model_name": MODEL,
            "label_words": list(LABEL_WORDS),
            "prompt": "Topic ({labels}) of: {text}",
            "max_tokens": 3,
            "concurrency": 2,
            "timeout_s": 1.0,
            "backoff_s": 0.05,
            "price_per_1k_input_tokens": 0.5,
            "price_per_1k_output_tokens": 2.0,
            "budget": budget,
            "store": store,
            "min_answered": 0.01,
        },
    )


def text_pool(count: int = 40) -> Pool:
    texts, _ = synthetic_texts(count, seed=2)
    return Pool(
        ids=np.arange(500, 500 + count),
        x=np.zeros((count, 3), np.float32),
        class_names=LABEL_WORDS,
        is_image=False,
        text=texts,
    )


def stored_tokens(spec: str) -> tuple[int, int]:
    store = open_store(spec)
    try:
        (one,) = store.summaries()
        return one.prompt_tokens, one.completion_tokens
    finally:
        store.close()


def test_an_openai_runs_stored_tokens_equal_its_metrics(store_spec, llm):
    """Two runs on one store, with faults (a reset: lost, no usage; a 500 with Retry-After: retried): after
    each, the store's token totals are the sum of the runs' `prompt/completion_tokens_this_run`."""
    pool = text_pool()
    runs = []
    with StandinLLMServer(llm, MODEL, plan=at({3: "reset", 7: "500ra"})) as server:
        for budget, chosen in ((20, pool.ids[:20]), (40, pool.ids)):
            queried, metrics = query(settings(server.url, store_spec, budget), pool, Selection(ids=chosen), False)
            runs.append(metrics)
            prompt, completion = stored_tokens(store_spec)
            assert metrics["prompt_tokens_this_run"] > 0 and len(queried.ids) == len(chosen) - metrics["unanswered"]
            assert prompt == sum(m["prompt_tokens_this_run"] for m in runs)
            assert completion == sum(m["completion_tokens_this_run"] for m in runs)
    assert runs[0]["teacher_lost"] == 1  # the reset: counted, no usage known, nothing stored for it
    store = open_store(store_spec)
    try:
        (one,) = store.summaries()
        assert (one.spent, one.answered, one.lost) == (40, 39, 1)
        text = summary(store, 40, (0.5, 2.0))
        assert f"| {one.prompt_tokens} | {one.completion_tokens} |" in text
        cost = one.prompt_tokens / 1000 * 0.5 + one.completion_tokens / 1000 * 2.0
        assert f"estimated cost {cost:.6f}" in text
        assert cost == pytest.approx(sum(m["estimated_cost_this_run"] for m in runs), abs=1e-5)
    finally:
        store.close()


def test_a_quarantined_answer_keeps_its_tokens_in_the_store(store_spec, llm):
    pool = text_pool(10)
    with StandinLLMServer(llm, MODEL, plan=at({4: "offlabel"})) as server:
        with pytest.raises(TeacherError, match="not one of teacher.label_words"):
            query(settings(server.url, store_spec, 10), pool, Selection(ids=pool.ids), False)
    store = open_store(store_spec)
    try:
        (one,) = store.summaries()
        ((_, _, raw),) = store.quarantined()
        with store.engine.connect() as c:
            rows = c.execute(sa.text("SELECT status, prompt_tokens, completion_tokens FROM ckd_batches")).all()
        rejected = [r for r in rows if r[0] == "rejected"]
        assert len(rejected) == 1 and rejected[0][1] == json.loads(raw)["usage"]["prompt_tokens"]
        assert rejected[0][2] == 1  # the stand-in answers with one token
        assert one.prompt_tokens == sum(r[1] for r in rows) and one.completion_tokens == one.answered + one.rejected
    finally:
        store.close()


def test_a_store_from_before_the_token_columns_opens_and_gains_them(store_spec):
    store = open_store(store_spec)
    run = store.open_run("t1", "a teacher")
    first = store.reserve("t1", run, [1, 2], ["a", "b"], budget=10)
    store.write_answers(first.batch, ["a", "b"], np.eye(2, 3, dtype=np.float32))
    store.close_run(run)
    with store.engine.begin() as c:  # what a store written before the columns existed looks like
        for name in ("prompt_tokens", "completion_tokens"):
            c.execute(sa.text(f"ALTER TABLE ckd_batches DROP COLUMN {name}"))
    store.close()
    engine = sa.create_engine(_url(store_spec))
    try:
        assert "prompt_tokens" not in {c["name"] for c in sa.inspect(engine).get_columns("ckd_batches")}
    finally:
        engine.dispose()

    reopened = open_store(store_spec)  # the migration: columns added, old rows NULL (no figure)
    try:
        with reopened.engine.connect() as c:
            columns = {col["name"] for col in sa.inspect(c).get_columns("ckd_batches")}
            old = c.execute(sa.text("SELECT prompt_tokens, completion_tokens FROM ckd_batches")).all()
        assert {"prompt_tokens", "completion_tokens"} <= columns and old == [(None, None)]
        assert reopened.spent() == 2 and reopened.summary("t1").prompt_tokens == 0
        # it keeps working: reserve before send, then an answer with its tokens
        run = reopened.open_run("t1", "a teacher")
        second = reopened.reserve("t1", run, [3], ["c"], budget=10)
        assert reopened.spent() == 3  # counted before any answer
        reopened.write_answers(second.batch, ["c"], np.eye(1, 3, dtype=np.float32), {"prompt_tokens": 7})
        reopened.close_run(run)
        one = reopened.summary("t1")
        assert (one.spent, one.answered, one.prompt_tokens, one.completion_tokens) == (3, 3, 7, 0)
        reopened.check()
    finally:
        reopened.close()
    again = open_store(store_spec)  # opening a migrated store again changes nothing
    try:
        assert again.summary("t1").prompt_tokens == 7
    finally:
        again.close()


def _url(spec: str) -> sa.URL:
    if "://" in spec:
        return sa.make_url(spec).set(drivername="postgresql+psycopg")
    from ckd.store.sqlite import store_file

    return sa.URL.create("sqlite", database=str(store_file(spec)))


def test_a_spilled_answer_keeps_its_tokens(tmp_path):
    """An answer the store would not take goes to a spill file with its tokens; the import stores both."""
    from ckd.store.spill import import_spills, spill

    store = open_store(str(tmp_path / "store"))
    try:
        run = store.open_run("t1", "a teacher")
        reservation = store.reserve("t1", run, [1], ["a"], budget=5)
        path = spill(
            store,
            "t1",
            reservation.batch,
            np.asarray([1]),
            ["a"],
            np.eye(1, 3, dtype=np.float32),
            {"prompt_tokens": 11},
        )
        assert path.is_file() and store.summary("t1").prompt_tokens == 0
        assert import_spills(store) == 1 and not path.exists()
        one = store.summary("t1")
        assert (one.answered, one.prompt_tokens, one.completion_tokens) == (1, 11, 0)
        store.close_run(run)
    finally:
        store.close()
