"""The `openai` teacher against the stand-in OpenAI-compatible server with injected faults.

Invariants of every case: completions the server computed <= the budget and <= the ledger's count;
every answer the client received is stored exactly once (no paid answer lost); the ledger and the
stored files agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ckd.data import read_arrays
from ckd.errors import CkdError, TeacherError
from ckd.query import run_query
from ckd.teachers.openai_chat import OpenAIChatTeacher, label_of, scores_from_logprobs
from ckd.testing.fault_proxy import at, every
from ckd.testing.faults import store_agrees
from ckd.testing.llm_server import StandinLLMServer, TextClassifierLLM
from tests.helpers.text import LABEL_WORDS, synthetic_texts

MODEL = "standin-llm"


@pytest.fixture(scope="module")
def llm():
    texts, labels = synthetic_texts(300, seed=1)
    return TextClassifierLLM(texts, labels, LABEL_WORDS)


@pytest.fixture(scope="module")
def texts():
    texts, labels = synthetic_texts(40, seed=2)
    return np.arange(500, 540), texts, labels


def teacher_for(server, **kwargs):
    options = dict(concurrency=2, timeout_s=5.0, max_retries=6, backoff_s=0.05, max_tokens=3)
    options.update(kwargs)
    return OpenAIChatTeacher(server.url, MODEL, LABEL_WORDS, prompt="Topic ({labels}) of: {text}", **options)


def delivered(server) -> int:
    """Answers the server computed and sent back within the client's patience."""
    return server.computed - server.faults.get("slow", 0) - server.faults.get("reset", 0)


CASES = [
    ("20% of requests answered 500", every(5, "500", 1), 40, {}),
    ("429 with Retry-After: 1 s, twice", at({1: "429", 4: "429"}), 40, {}),
    ("answers after the client's timeout", at({2: "slow", 9: "slow"}), 45, {"timeout_s": 1.0}),
    ("a connection reset after the server computed", at({3: "reset"}), 42, {}),
    ("all at once: 500s, a 429, a late answer, a reset", lambda i: {3: "429", 5: "slow", 8: "reset"}.get(
        i, "500" if i % 5 == 1 else "ok"), 45, {"timeout_s": 1.0}),
    ("a late answer when the budget is already spent", at({2: "slow"}), 40, {"timeout_s": 1.0}),
]


@pytest.mark.parametrize("name,plan,budget,options", CASES, ids=[c[0] for c in CASES])
def test_faults_keep_the_budget_and_lose_no_answer(tmp_path, llm, texts, name, plan, budget, options):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=plan, slow_s=2.5) as server:
        teacher = teacher_for(server, **options)
        result = run_query(teacher, ids, x, len(LABEL_WORDS), budget, tmp_path / "store", 32, progress=False)
        computed, answered_by_server = server.computed, delivered(server)
    stored, problems = store_agrees(result.store)
    assert problems == []
    assert computed <= budget and computed <= result.teacher_calls <= budget
    assert len(stored) == answered_by_server == result.teacher_outputs  # every received answer is stored
    assert result.teacher_lost == result.teacher_calls - result.teacher_outputs
    assert result.unanswered == len(x) - len(result.ids)
    if budget >= len(x) + server.faults.get("slow", 0) + server.faults.get("reset", 0):
        assert result.unanswered == 0
    assert result.usage["completion_tokens"] == len(stored)  # the stand-in answers with one token


def test_budget_spent_leaves_the_rest_unanswered(tmp_path, llm, texts):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=at({2: "slow"}), slow_s=2.5) as server:
        result = run_query(teacher_for(server, timeout_s=1.0), ids, x, 4, 40, tmp_path / "store", 32, progress=False)
        assert server.computed <= 40
    assert result.teacher_calls == 40 and result.teacher_lost == 1 and result.unanswered == 1


def test_an_answer_outside_the_label_words_is_quarantined_with_the_models_words(tmp_path, llm, texts):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=at({4: "offlabel"})) as server:
        with pytest.raises(TeacherError, match="not one of teacher.label_words"):
            run_query(teacher_for(server, concurrency=1), ids, x, 4, 40, tmp_path / "store", 32, progress=False)
        computed = server.computed
    store = next((tmp_path / "store").iterdir())
    stored, problems = store_agrees(store)
    assert problems == [] and len(stored) == 4 and computed == 5
    (quarantined,) = sorted((store / "quarantine").glob("*.npz"))
    kept = read_arrays(quarantined)
    assert str(kept["raw"]) == "Unsure" and int(kept["ids"][0]) == ids[4]
    assert int(kept["completion_tokens"][0]) == 1  # its tokens were paid and are counted
    events = [json.loads(line) for line in (store / "ledger.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("rejected") == 1


def test_retries_running_out_give_the_count_back(tmp_path, llm, texts):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=lambda i: "500") as server:
        with pytest.raises(CkdError, match="refused"):
            run_query(teacher_for(server, max_retries=2, concurrency=1), ids, x, 4, 40, tmp_path / "store", 32,
                      progress=False)
        assert server.computed == 0 and server.requests == 3
    events = [json.loads(line) for line in (next((tmp_path / "store").iterdir()) / "ledger.jsonl").read_text()
              .splitlines()]
    assert [e["event"] for e in events] == ["open", "reserve", "refused"]


def test_scores_are_label_word_log_probabilities(tmp_path, llm, texts):
    ids, x, labels = texts
    with StandinLLMServer(llm, MODEL) as server:
        result = run_query(teacher_for(server), ids, x, 4, 40, tmp_path / "store", 32, progress=False)
    expected = np.log(llm.probabilities(["Topic (World, Sports, Business, Science) of: " + t for t in x]))
    np.testing.assert_allclose(result.scores, expected, atol=1e-4)  # renormalised over the label words
    stored = read_arrays(sorted((result.store / "batches").glob("*.npz"))[0])
    assert str(stored["score_source"][0]) == "logprobs" and int(stored["prompt_tokens"][0]) > 5


def test_without_logprobs_the_answer_is_a_smoothed_one_hot(tmp_path, llm, texts):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, logprobs=False) as server:
        result = run_query(teacher_for(server, smoothing=0.2), ids[:5], x[:5], 4, 5, tmp_path / "store", 32,
                           progress=False)
    probabilities = np.exp(result.scores)
    np.testing.assert_allclose(np.sort(probabilities, 1), np.tile([0.05, 0.05, 0.05, 0.85], (5, 1)), atol=1e-6)
    stored = read_arrays(sorted((result.store / "batches").glob("*.npz"))[0])
    assert str(stored["score_source"][0]) == "onehot"


def test_token_from_the_environment_only_and_never_written(tmp_path, llm, texts, monkeypatch, caplog):
    ids, x, _ = texts
    secret = "sk-test-3f9a1c77e2"
    monkeypatch.setenv("LLM_KEY", secret)
    with StandinLLMServer(llm, MODEL, plan=at({1: "offlabel"})) as server:
        with pytest.raises(TeacherError) as error:
            run_query(teacher_for(server, token_env="LLM_KEY", concurrency=1), ids, x, 4, 40, tmp_path / "store", 32,
                      progress=False)
        assert server.authorizations == {f"Bearer {secret}"}
    assert secret not in str(error.value) and secret not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_wrong_model_name_or_url_costs_nothing(llm):
    with StandinLLMServer(llm, MODEL) as server:
        with pytest.raises(TeacherError, match="teacher.model_name"):
            OpenAIChatTeacher(server.url, "gpt-nonexistent", LABEL_WORDS)
        assert server.requests == 0
        url = server.url
    with pytest.raises(TeacherError, match="teacher.url"):
        OpenAIChatTeacher(url, MODEL, LABEL_WORDS, timeout_s=2.0)


def test_label_matching_and_renormalisation():
    assert label_of(" sports.", LABEL_WORDS) == 1 and label_of("Sci", LABEL_WORDS) == 3
    assert label_of("S", LABEL_WORDS) is None and label_of("Weather", LABEL_WORDS) is None
    top = [("Sports", np.log(0.6)), (" sports", np.log(0.1)), ("World", np.log(0.2)), ("The", np.log(0.05))]
    p = np.exp(scores_from_logprobs(top, LABEL_WORDS))
    # Business and Science share the 5% the list leaves uncovered, then everything is renormalised.
    np.testing.assert_allclose(p, np.array([0.2, 0.7, 0.025, 0.025]) / 0.95, atol=1e-9)
    assert scores_from_logprobs([("The", -0.1)], LABEL_WORDS) is None


def test_retry_after_of_a_429_is_honoured(tmp_path, llm, texts, monkeypatch):
    import ckd.teachers.openai_chat as backend

    ids, x, _ = texts
    waits = []
    monkeypatch.setattr(backend.time, "sleep", waits.append)
    with StandinLLMServer(llm, MODEL, plan=at({0: "429", 1: "500"}), retry_after_s=7) as server:
        result = run_query(teacher_for(server, concurrency=1), ids[:3], x[:3], 4, 3, tmp_path / "store", 32,
                           progress=False)
        assert server.computed == 3
    assert waits[0] == 7.0 and 0 < waits[1] < 7.0  # Retry-After on the 429; backoff with jitter after the 500
    assert result.teacher_calls == 3 and result.teacher_outputs == 3
