"""`teacher.api: batch` (OpenAI's Batch API) against the stand-in batch endpoint with faults.

Invariants of every case: requests the endpoint answered <= the store's count <= the budget; every answer
the endpoint gave is stored exactly once; no inputs go into a second job while their first job can still
answer; the store passes its own consistency check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ckd.errors import TeacherError
from ckd.query import run_query
from ckd.store import open_store
from ckd.teachers import build_teacher
from ckd.teachers.openai_batch import OpenAIBatchTeacher
from ckd.teachers.openai_chat import OpenAITeacherConfig
from tests.conftest import PROJECT
from tests.helpers.faults import store_agrees
from tests.helpers.openai_batch_server import StandinBatchServer
from tests.helpers.text import LABEL_WORDS, synthetic_texts

MODEL = "standin-llm"


@pytest.fixture(scope="module")
def texts():
    texts, _ = synthetic_texts(30, seed=2)
    return np.arange(700, 730), texts


def settings(server, tmp_path, **overrides) -> dict:
    values = {
        "kind": "openai",
        "api": "batch",
        "url": server.url,
        "model_name": MODEL,
        "label_words": list(LABEL_WORDS),
        "prompt": "Topic ({labels}) of: {text}",
        "budget": 40,
        "store": str(tmp_path / "store"),
        "batch_poll_s": 0.05,
        "backoff_s": 0.05,
        "max_tokens": 3,
    }
    values.update(overrides)
    return values


def teacher_for(server, tmp_path, **overrides) -> OpenAIBatchTeacher:
    teacher = build_teacher(OpenAITeacherConfig(**settings(server, tmp_path, **overrides)))
    assert isinstance(teacher, OpenAIBatchTeacher)
    return teacher


def ask(teacher, texts, tmp_path, budget=40):
    ids, x = texts
    return run_query(teacher, ids, x, len(LABEL_WORDS), budget, tmp_path / "store", 32, progress=False)


def summary_of(tmp_path):
    store = open_store(str(tmp_path / "store"))
    try:
        (summary,) = store.summaries()
        return summary, store.batch_rows()
    finally:
        store.close()


def test_one_job_answers_everything_with_the_chat_paths_scores(tmp_path, llm, texts):
    with StandinBatchServer(llm, MODEL) as server:
        result = ask(teacher_for(server, tmp_path, batch_requests=50), texts, tmp_path)
        assert len(server.jobs) == 1 and server.computed == 30 and server.chat_requests == 0
    expected = np.log(llm.probabilities(["Topic (World, Sports, Business, Science) of: " + t for t in texts[1]]))
    np.testing.assert_allclose(result.scores, expected, atol=1e-4)  # as the chat path scores them
    assert result.calls_this_run == 30 == result.teacher_outputs and result.unanswered == 0
    assert result.usage["completion_tokens"] == 30 and result.score_sources == {"logprobs": 30}
    stored, problems = store_agrees(str(tmp_path / "store"))
    assert problems == [] and stored == 30
    _, rows = summary_of(tmp_path)
    assert {r["remote"] for r in rows} == {f"batch:{next(iter(server.jobs))}"}  # the job's id is in the store


def test_jobs_are_cut_at_batch_requests_and_the_budget(tmp_path, llm, texts):
    with StandinBatchServer(llm, MODEL) as server:
        result = ask(teacher_for(server, tmp_path, batch_requests=8), texts, tmp_path, budget=20)
        assert len(server.jobs) == 3 and server.computed == 20  # 8 + 8 + 4: the budget stops the third
    assert result.calls_spent_total == 20 and result.unanswered == 10


def test_an_expired_job_gives_back_what_it_did_not_do_and_the_rerun_asks_only_that(tmp_path, llm, texts):
    with StandinBatchServer(llm, MODEL) as server:
        server.expire_after = 12
        with pytest.raises(TeacherError, match=r"expired: 18 of its 30 requests were not done \(batch_expired\)"):
            ask(teacher_for(server, tmp_path), texts, tmp_path)
        summary, _ = summary_of(tmp_path)
        assert summary.answered == 12 == server.computed and summary.refused == 18 and summary.spent == 12
        server.expire_after = None
        result = ask(teacher_for(server, tmp_path), texts, tmp_path)
        assert len(server.jobs) == 2 and server.computed == 30  # the second job carries the 18 only
    assert result.calls_this_run == 18 and result.calls_spent_total == 30 and result.unanswered == 0
    assert store_agrees(str(tmp_path / "store")) == (30, [])


def test_partial_results_store_what_came_and_count_what_may_have_run(tmp_path, llm, texts):
    with StandinBatchServer(llm, MODEL) as server:
        server.error_at, server.missing_at = {3, 7}, {5}
        with pytest.raises(TeacherError, match="2 of its 30 requests were not done"):
            ask(teacher_for(server, tmp_path), texts, tmp_path)
        assert server.computed == 27
    summary, rows = summary_of(tmp_path)
    assert summary.answered == 27 and summary.refused == 2 and summary.lost == 1 and summary.spent == 28
    (lost,) = [r for r in rows if r["status"] == "lost"]
    assert "without a result" in lost["reason"]
    assert store_agrees(str(tmp_path / "store")) == (27, [])


def test_an_answer_outside_the_label_words_is_quarantined_the_rest_stored(tmp_path, llm, texts):
    with StandinBatchServer(llm, MODEL) as server:
        server.offlabel_at = {4}
        with pytest.raises(TeacherError, match="not one of teacher.label_words"):
            ask(teacher_for(server, tmp_path), texts, tmp_path)
    summary, _ = summary_of(tmp_path)
    assert summary.answered == 29 and summary.rejected == 1 and summary.spent == 30


def test_a_job_that_fails_validation_gives_every_call_back(tmp_path, llm, texts):
    with StandinBatchServer(llm, MODEL) as server:
        server.invalid = True
        with pytest.raises(TeacherError, match="30 of its 30 requests were not done"):
            ask(teacher_for(server, tmp_path), texts, tmp_path)
        assert server.computed == 0
    summary, _ = summary_of(tmp_path)
    assert summary.spent == 0 and summary.refused == 30


def test_a_create_that_fails_after_creating_finds_the_job_instead_of_making_another(tmp_path, llm, texts):
    with StandinBatchServer(llm, MODEL) as server:
        server.create_then_500 = True
        result = ask(teacher_for(server, tmp_path, max_retries=0), texts, tmp_path)
        assert len(server.jobs) == 1 and server.computed == 30
    assert result.teacher_outputs == 30 and result.calls_spent_total == 30


def test_waiting_past_batch_max_wait_stops_and_the_next_run_resumes_the_same_job(tmp_path, llm, texts):
    with StandinBatchServer(llm, MODEL) as server:
        server.hold = True
        with pytest.raises(TeacherError, match="still in_progress; its 30 requests stay counted"):
            ask(teacher_for(server, tmp_path, batch_max_wait_s=0.3), texts, tmp_path)
        summary, _ = summary_of(tmp_path)
        assert summary.spent == 30 and summary.lost == 30 and server.computed == 0
        chat = build_teacher(OpenAITeacherConfig(**settings(server, tmp_path, api="chat")))  # the same question
        assert chat.identity == teacher_for(server, tmp_path).identity
        with pytest.raises(TeacherError, match="30 inputs of this teacher are in 1 Batch API job"):
            ask(chat, texts, tmp_path)
        assert server.chat_requests == 0  # asking them one by one would pay twice
        server.hold = False
        result = ask(teacher_for(server, tmp_path), texts, tmp_path)
        assert len(server.jobs) == 1 and server.computed == 30  # polled again, never submitted again
    assert result.calls_this_run == 0 and result.teacher_outputs == 30 and result.unanswered == 0


CHILD = """
import json, sys
import numpy as np
from ckd.query import run_query
from ckd.teachers import build_teacher
from ckd.teachers.openai_chat import OpenAITeacherConfig
spec = json.loads(sys.argv[1])
teacher = build_teacher(OpenAITeacherConfig(**spec["settings"]))
run_query(teacher, np.asarray(spec["ids"]), np.asarray(spec["texts"]), 4, 40, spec["settings"]["store"], 32, False)
"""


def test_sigkill_while_polling_then_rerun_never_submits_twice(tmp_path, llm, texts):
    ids, x = texts
    with StandinBatchServer(llm, MODEL) as server:
        server.hold = True
        spec = {"settings": settings(server, tmp_path), "ids": ids.tolist(), "texts": x.tolist()}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(spec)],
            cwd=PROJECT,
            env={**os.environ, "TQDM_DISABLE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 300  # a guard against a hang, not a speed check
        while not any(job["polls"] >= 2 for job in list(server.jobs.values())) and time.time() < deadline:
            assert child.poll() is None, "the query ended before it was killed"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert len(server.jobs) == 1 and server.computed == 0
        server.hold = False
        result = ask(teacher_for(server, tmp_path), texts, tmp_path)
        assert len(server.jobs) == 1 and server.computed == 30  # the same job, polled to its end
    assert result.teacher_outputs == 30 and result.calls_spent_total == 30 and result.unanswered == 0
    assert store_agrees(str(tmp_path / "store")) == (30, [])


def test_the_batch_option_is_validated_and_halves_the_cost_estimate():
    config = OpenAITeacherConfig(
        kind="openai", url="http://127.0.0.1:1/v1", model_name="m", label_words=["a", "b"], api="batch"
    )
    assert config.price_factor == 0.5 and config.model_copy(update={"api": "chat"}).price_factor == 1.0
    from ckd.stages.query import usage_metrics

    priced = config.model_copy(update={"price_per_1k_input_tokens": 1.0, "price_per_1k_output_tokens": 4.0})
    usage = {"prompt_tokens": 2000, "completion_tokens": 500}
    assert usage_metrics(usage, priced)["estimated_cost_this_run"] == 2.0  # (2 + 2) x 0.5
    assert usage_metrics(usage, priced.model_copy(update={"api": "chat"}))["estimated_cost_this_run"] == 4.0
    with pytest.raises(ValueError, match="batch_requests"):
        OpenAITeacherConfig(
            kind="openai", url="http://127.0.0.1:1/v1", model_name="m", label_words=["a", "b"], batch_requests=50_001
        )


def test_a_run_that_died_between_upload_and_create_gives_back_and_asks_once(tmp_path, llm, texts):
    """The store holds the input file's id and no job: no job was made from that file, so the calls are
    given back and the inputs go into one new job."""
    from ckd.query import input_hashes

    ids, x = texts
    with StandinBatchServer(llm, MODEL) as server:
        teacher = teacher_for(server, tmp_path)
        uploaded = teacher.client.files.create(file=("ckd-requests.jsonl", b"{}\n"), purpose="batch")
        store = open_store(str(tmp_path / "store"))
        try:
            run = store.open_run(teacher.identity, teacher.description)
            hashes = input_hashes(x)
            batches = [store.reserve(teacher.identity, run, [int(ids[i])], [hashes[i]], 40).batch for i in range(3)]
            store.set_remote(batches, f"file:{uploaded.id}")
            store.close_run(run)  # as a dead run's batches end: lost, still counted
            assert store.spent() == 3
        finally:
            store.close()
        result = ask(teacher, texts, tmp_path)
        assert len(server.jobs) == 1 and server.computed == 30
    summary, rows = summary_of(tmp_path)
    assert summary.refused == 3 and summary.answered == 30 and result.calls_spent_total == 30
    assert all("no job was created from its file" in r["reason"] for r in rows[:3])
