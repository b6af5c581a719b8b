"""The `openai` teacher against the stand-in OpenAI-compatible server with injected faults.

Invariants of every case: completions the server computed <= the store's count <= the budget; every
answer the client received is stored exactly once (no paid answer lost); the store passes its own
consistency check. Fault semantics as for every teacher (`ckd.store`): a 429 or a 500 with Retry-After
is retried; a bare 500, a timeout or a reset connection is an unknown outcome that stays counted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ckd.errors import CkdError, TeacherError
from ckd.query import input_hashes, run_query
from ckd.store import open_store
from ckd.teachers.openai_chat import OpenAIChatTeacher, label_of, scores_from_logprobs
from examples.ag_news.llm_server import StandinLLMServer
from tests.helpers.fault_proxy import at, every
from tests.helpers.faults import store_agrees
from tests.helpers.text import LABEL_WORDS, synthetic_texts

MODEL = "standin-llm"


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


def store_of(tmp_path):
    return open_store(str(tmp_path / "store"))


CASES = [
    ("20% of requests answered a bare 500 (counted)", every(5, "500", 1), 60, {}),
    ("20% answered 500 with Retry-After (retried)", every(5, "500ra", 1), 40, {}),
    ("429 with Retry-After: 1 s, twice", at({1: "429", 4: "429"}), 40, {}),
    ("answers after the client's timeout", at({2: "slow", 9: "slow"}), 45, {"timeout_s": 1.0}),
    ("a connection reset after the server computed", at({3: "reset"}), 42, {}),
    (
        "all at once: 500s, a 429, a late answer, a reset",
        lambda i: {3: "429", 5: "slow", 8: "reset"}.get(i, "500" if i % 7 == 1 else "ok"),
        60,
        {"timeout_s": 1.0},
    ),
    ("a late answer when the budget is already spent", at({2: "slow"}), 40, {"timeout_s": 1.0}),
]


@pytest.mark.parametrize("name,plan,budget,options", CASES, ids=[c[0] for c in CASES])
def test_faults_keep_the_budget_and_lose_no_answer(tmp_path, llm, texts, name, plan, budget, options):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=plan, slow_s=2.5) as server:
        teacher = teacher_for(server, **options)
        result = run_query(teacher, ids, x, len(LABEL_WORDS), budget, tmp_path / "store", 32, progress=False)
        computed, answered_by_server = server.computed, delivered(server)
    stored, problems = store_agrees(str(tmp_path / "store"))
    assert problems == []
    assert computed <= result.calls_spent_total <= budget and result.calls_this_run == result.calls_spent_total
    assert stored == answered_by_server == result.teacher_outputs  # every received answer is stored
    assert result.teacher_lost == result.calls_spent_total - result.teacher_outputs
    assert result.unanswered == len(x) - len(result.ids)
    if result.calls_spent_total < budget:  # budget left: everything was asked until answered
        assert result.unanswered == 0
    assert result.usage["completion_tokens"] == stored  # the stand-in answers with one token
    assert result.score_sources == {"logprobs": stored}


def test_a_bare_500_stays_counted_as_lost(tmp_path, llm, texts):
    """A bare 500 does not say that nothing ran (a model may have computed and billed it)."""
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=lambda i: "500") as server:
        result = run_query(teacher_for(server, concurrency=1), ids[:5], x[:5], 4, 5, tmp_path / "store", 32, False)
        assert server.computed == 0 and server.requests == 5
    assert result.calls_spent_total == 5 and result.teacher_lost == 5 and result.unanswered == 5


def test_budget_spent_leaves_the_rest_unanswered(tmp_path, llm, texts):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=at({2: "slow"}), slow_s=2.5) as server:
        result = run_query(teacher_for(server, timeout_s=1.0), ids, x, 4, 40, tmp_path / "store", 32, progress=False)
        assert server.computed <= 40
    assert result.calls_spent_total == 40 and result.teacher_lost == 1 and result.unanswered == 1


def test_an_answer_outside_the_label_words_is_quarantined_with_the_models_words(tmp_path, llm, texts):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=at({4: "offlabel"})) as server:
        with pytest.raises(TeacherError, match="not one of teacher.label_words"):
            run_query(teacher_for(server, concurrency=1), ids, x, 4, 40, tmp_path / "store", 32, progress=False)
        computed = server.computed
    store = store_of(tmp_path)
    try:
        (summary,) = store.summaries()
        assert summary.answered == 4 and summary.rejected == 1 and summary.spent == 5 == computed
        ((_, problem, raw),) = store.quarantined()
        assert "not one of teacher.label_words" in problem
        kept = json.loads(raw)
        assert kept["answer"] == "Unsure" and kept["usage"]["completion_tokens"] == 1  # its tokens were paid
        answered = store.answers(summary.teacher, input_hashes(x[:5]))
        assert len(answered) == 4 and input_hashes(x[4:5])[0] not in answered
    finally:
        store.close()


def test_retries_running_out_give_the_count_back(tmp_path, llm, texts):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=lambda i: "500ra") as server:
        with pytest.raises(CkdError, match="refused"):
            run_query(teacher_for(server, max_retries=2, concurrency=1), ids, x, 4, 40, tmp_path / "store", 32, False)
        assert server.computed == 0 and server.requests == 3
    store = store_of(tmp_path)
    try:
        (summary,) = store.summaries()
        assert summary.spent == 0 and summary.refused == 1 and store.spent() == 0
    finally:
        store.close()


def test_scores_are_label_word_log_probabilities(tmp_path, llm, texts):
    ids, x, labels = texts
    with StandinLLMServer(llm, MODEL) as server:
        teacher = teacher_for(server)
        result = run_query(teacher, ids, x, 4, 40, tmp_path / "store", 32, progress=False)
        answer = teacher.predict(x[:1])  # one direct call, to read what comes with the scores
    expected = np.log(llm.probabilities(["Topic (World, Sports, Business, Science) of: " + t for t in x]))
    np.testing.assert_allclose(result.scores, expected, atol=1e-4)  # renormalised over the label words
    assert answer.sources == ["logprobs"] and answer.usage["prompt_tokens"] > 5
    assert result.usage["prompt_tokens"] > 5 * 40 and result.score_sources == {"logprobs": 40}


def test_without_logprobs_the_answer_is_a_smoothed_one_hot(tmp_path, llm, texts):
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, logprobs=False) as server:
        result = run_query(
            teacher_for(server, smoothing=0.2), ids[:5], x[:5], 4, 5, tmp_path / "store", 32, progress=False
        )
    probabilities = np.exp(result.scores)
    np.testing.assert_allclose(np.sort(probabilities, 1), np.tile([0.05, 0.05, 0.05, 0.85], (5, 1)), atol=1e-6)
    assert result.score_sources == {"onehot": 5}


def test_token_from_the_environment_only_and_never_written(tmp_path, llm, texts, monkeypatch, caplog):
    ids, x, _ = texts
    secret = "sk-test-3f9a1c77e2"
    monkeypatch.setenv("LLM_KEY", secret)
    with StandinLLMServer(llm, MODEL, plan=at({1: "offlabel"})) as server:
        with pytest.raises(TeacherError) as error:
            run_query(
                teacher_for(server, token_env="LLM_KEY", concurrency=1), ids, x, 4, 40, tmp_path / "store", 32, False
            )
        assert server.authorizations == {f"Bearer {secret}"}
    assert secret not in str(error.value) and secret not in caplog.text
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".sqlite" for path in files)  # the store, quarantine included, is searched too
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def test_a_wrong_model_name_or_url_costs_nothing(llm):
    with StandinLLMServer(llm, MODEL) as server:
        with pytest.raises(TeacherError, match="teacher.model_name"):
            OpenAIChatTeacher(server.url, "gpt-nonexistent", LABEL_WORDS)
        assert server.requests == 0
        url = server.url
    with pytest.raises(TeacherError, match="teacher.url"):
        OpenAIChatTeacher(url, MODEL, LABEL_WORDS, timeout_s=2.0)


def test_another_spelling_of_the_url_is_the_same_teacher(llm):
    with StandinLLMServer(llm, MODEL) as server:
        one = OpenAIChatTeacher(server.url, MODEL, LABEL_WORDS, check_model=False)
        spelled = "HTTP" + server.url[len("http") :].replace("/v1", "/./v1/")  # scheme case, a dot segment, a slash
        other = OpenAIChatTeacher(spelled, MODEL, LABEL_WORDS, check_model=False)
        reworded = OpenAIChatTeacher(server.url, MODEL, LABEL_WORDS, prompt="Say: {text}", check_model=False)
    assert one.identity == other.identity and one.identity != reworded.identity  # a new prompt: a new question


def test_label_matching_and_renormalisation():
    assert label_of(" sports.", LABEL_WORDS) == 1 and label_of("Sci", LABEL_WORDS) == 3
    assert label_of("S", LABEL_WORDS) is None and label_of("Weather", LABEL_WORDS) is None
    top = [("Sports", np.log(0.6)), (" sports", np.log(0.1)), ("World", np.log(0.2)), ("The", np.log(0.05))]
    p = np.exp(scores_from_logprobs(top, LABEL_WORDS))
    # Business and Science share the 5% the list leaves uncovered, then everything is renormalised.
    np.testing.assert_allclose(p, np.array([0.2, 0.7, 0.025, 0.025]) / 0.95, atol=1e-9)
    assert scores_from_logprobs([("The", -0.1)], LABEL_WORDS) is None


def test_retry_after_is_honoured(tmp_path, llm, texts, monkeypatch):
    import ckd.teachers.openai_chat as backend

    ids, x, _ = texts
    waits: list[float] = []
    monkeypatch.setattr(backend.time, "sleep", waits.append)
    with StandinLLMServer(llm, MODEL, plan=at({0: "429", 1: "500ra"}), retry_after_s=7) as server:
        result = run_query(
            teacher_for(server, concurrency=1), ids[:3], x[:3], 4, 3, tmp_path / "store", 32, progress=False
        )
        assert server.computed == 3
    assert waits.count(7.0) == 2  # the 429's and the 500's Retry-After
    assert result.calls_spent_total == 3 and result.teacher_outputs == 3


def test_an_endless_answer_is_cut_at_the_cap_kept_apart_and_one_line(texts, tmp_path):
    """issue 21: a 200 whose body never ends is read up to teacher.max_response_mb, not without end."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    stopping = threading.Event()

    class Endless(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                while not stopping.is_set():
                    self.wfile.write(b'{"choices": [' + b" " * 65536)
            except OSError:
                pass
            self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        teacher = OpenAIChatTeacher(url, MODEL, LABEL_WORDS, timeout_s=30, check_model=False, max_response_mb=1)
        ids, x, _ = texts
        with pytest.raises(TeacherError, match=r"unusably: HTTP 200 with a body over teacher.max_response_mb=1 MB"):
            run_query(teacher, ids[:2], x[:2], len(LABEL_WORDS), 2, tmp_path / "store", batch_size=1, progress=False)
    finally:
        stopping.set()
        httpd.shutdown()
        httpd.server_close()
    store = store_of(tmp_path)
    (summary,) = store.summaries()
    store.close()
    assert (summary.spent, summary.rejected, summary.answered) == (1, 1, 0)  # paid, kept apart, one request


# issue 20: the provider's rate-limit headers (retry-after-ms, retry-after, x-ratelimit-reset-*, -remaining-*)
@pytest.mark.parametrize("fault", ["429", "429ms", "429reset", "exhausted"])
def test_rate_limit_headers_hold_the_next_request(tmp_path, llm, texts, fault):
    """The next request leaves no sooner than the provider said (the backoff alone would be 0.05 s)."""
    ids, x, _ = texts
    with StandinLLMServer(llm, MODEL, plan=at({2: fault}), retry_after_s=1) as server:
        result = run_query(teacher_for(server, concurrency=1), ids[:6], x[:6], 4, 6, tmp_path / "store", 32, False)
        gap = server.arrivals[3] - server.arrivals[2]
    assert gap >= 0.9  # a lower bound only: a busy machine can make it longer, never shorter
    assert result.teacher_outputs == 6 and result.calls_spent_total == 6  # a 429 is retried, not counted


def test_rate_limit_header_parsing():
    from ckd.teachers.openai_chat import duration_s, exhausted_wait_s, rate_limit_wait_s

    assert duration_s("6m0s") == 360 and duration_s("20ms") == 0.02 and duration_s("1h2m3.5s") == 3723.5
    assert duration_s("2") == 2 and duration_s("soon") is None and duration_s("1s garbage") is None
    assert rate_limit_wait_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert rate_limit_wait_s({"retry-after": "3", "x-ratelimit-reset-requests": "9s"}) == 3
    assert rate_limit_wait_s({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "1m"}) == 60
    assert rate_limit_wait_s({}) is None
    assert exhausted_wait_s({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s"}) is None
    assert exhausted_wait_s({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.5s"}) == 1.5
