"""A STAND-IN for a large language model behind an OpenAI-compatible API, on 127.0.0.1, for the tests and
the demo. It is not a language model: a TF-IDF + logistic-regression classifier trained on the labelled
pool answers `POST /v1/chat/completions` with one label word and the first token's `top_logprobs`
(the classifier's probabilities, with a little mass on tokens that are no label word, as a real model
leaves). `GET /v1/models` lists its one model. Point `teacher.url` at a real provider or a local vLLM /
llama.cpp server for real use (README).

Fault injection for the tests: each chat completion gets the next fault of a plan (`tests/helpers/
fault_proxy.py`: `every` / `at`): `ok`; `429` and `500ra` (with Retry-After: the server says it ran
nothing) and `500` (answered at once, nothing computed, but a bare 500 does not say so: the client
counts it); `slow` (computed, answered after `slow_s`, past the client's timeout); `reset` (computed,
then the connection is reset with no answer); `offlabel` (computed, answered with a word that is no
label word); the provider's rate-limit headers: `429ms` (a 429 with `retry-after-ms` only), `429reset` (a 429
with `x-ratelimit-reset-requests` only), `exhausted` (answered, with `x-ratelimit-remaining-requests: 0`).
`computed` counts the completions the model computed, the figure the budget bounds; `arrivals` the
time (monotonic) each completion request arrived.

    python -m examples.ag_news.llm_server --params examples/ag_news/params.yaml   # the demo's settings
    python -m examples.ag_news.llm_server --data ../shared/data/ag_news_test.csv --text title description \
        --label-words World Sports Business Science --test-size 1600 --seed 0 --port 8011
"""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Sequence

import numpy as np

from examples.ag_news.local_http import LocalServer, QuietHandler, send_json

# Tokens a real model puts some probability on that spell no label word.
_OTHER_TOKENS = (("The", 0.02), ("\n", 0.01))


def _tokens(text: str) -> int:
    """A rough token count for `usage` (words and punctuation marks)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


class TextClassifierLLM:
    """TF-IDF (1-2 grams) + logistic regression on (text, label) pairs; answers with label words."""

    def __init__(self, texts: Sequence[str], labels: np.ndarray, label_words: Sequence[str], seed: int = 0):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.label_words = list(label_words)
        self.model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegression(C=10.0, max_iter=1000, random_state=seed),
        )
        self.model.fit(list(texts), labels)
        if len(self.model.classes_) != len(self.label_words):
            raise ValueError(f"{len(self.label_words)} label words for {len(self.model.classes_)} classes")

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict_proba(list(texts))

    def accuracy(self, texts: Sequence[str], labels: np.ndarray) -> float:
        return float((self.probabilities(texts).argmax(1) == labels).mean())

    def completion(
        self, prompt: str, model: str, with_logprobs: bool, top_logprobs: int, word: str | None = None
    ) -> dict:
        # The whole prompt is classified: the template's words are the same for every input.
        p = self.probabilities([prompt])[0]
        answer = word or self.label_words[int(p.argmax())]
        other = sum(mass for _, mass in _OTHER_TOKENS)
        top = [(w, float(q) * (1 - other)) for w, q in zip(self.label_words, p)] + list(_OTHER_TOKENS)
        top = sorted(top, key=lambda item: -item[1])[: max(1, top_logprobs)]
        top_entries = [{"token": t, "logprob": math.log(max(q, 1e-12)), "bytes": list(t.encode())} for t, q in top]
        choice = {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": answer},
            "logprobs": None,
        }
        if with_logprobs:
            first = next((e for e in top_entries if e["token"] == answer), None) or {
                "token": answer,
                "logprob": math.log(0.5),
                "bytes": list(answer.encode()),
            }
            choice["logprobs"] = {"content": [{**first, "top_logprobs": top_entries}], "refusal": None}
        prompt_tokens = _tokens(prompt)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1},
        }


class StandinLLMServer(LocalServer):
    """`with StandinLLMServer(llm) as server:` serves on `server.url` (`.../v1`) until the block ends."""

    def __init__(
        self,
        llm: TextClassifierLLM,
        model: str = "standin-llm",
        plan: Callable[[int], str] | None = None,
        port: int = 0,
        slow_s: float = 2.5,
        retry_after_s: int = 1,
        logprobs: bool = True,
        offlabel_word: str = "Unsure",
    ):
        self.llm, self.model, self.plan = llm, model, plan or (lambda i: "ok")
        self.slow_s, self.retry_after_s, self.logprobs, self.offlabel_word = (
            slow_s,
            retry_after_s,
            logprobs,
            offlabel_word,
        )
        self.lock = threading.Lock()
        self.requests = 0
        self.computed = 0
        self.faults: dict[str, int] = {}
        self.arrivals: list[float] = []
        self.authorizations: set[str] = set()
        server = self

        class Handler(QuietHandler):
            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    send_json(
                        self,
                        200,
                        {
                            "object": "list",
                            "data": [{"id": server.model, "object": "model", "owned_by": "ckd-standin"}],
                        },
                    )
                else:
                    send_json(self, 404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    send_json(self, 404, {"error": {"message": f"no route {self.path}"}})
                    return
                server._complete(self, body)

        super().__init__(Handler, port)
        self.url = f"{self.base_url}/v1"

    def _complete(self, handler, body: bytes) -> None:
        try:
            request = json.loads(body)
            prompt = "\n".join(str(m.get("content", "")) for m in request["messages"])
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            send_json(handler, 400, {"error": {"message": "expected a JSON body with messages"}})
            return
        if request.get("model") != self.model:
            send_json(handler, 404, {"error": {"message": f"model {request.get('model')!r} not found"}})
            return
        with self.lock:
            index = self.requests
            self.requests += 1
            self.arrivals.append(time.monotonic())
            fault = self.plan(index)
            self.faults[fault] = self.faults.get(fault, 0) + 1
            self.authorizations.add(handler.headers.get("Authorization", ""))
        if fault == "429":
            send_json(
                handler, 429, {"error": {"message": "injected: rate limited"}}, {"Retry-After": str(self.retry_after_s)}
            )
            return
        if fault in ("429ms", "429reset"):
            wait = {"429ms": {"retry-after-ms": str(self.retry_after_s * 1000)}}
            headers = wait.get(fault, {"x-ratelimit-reset-requests": f"{self.retry_after_s}s"})
            send_json(handler, 429, {"error": {"message": "injected: rate limited"}}, headers)
            return
        if fault in ("500", "500ra"):
            headers = {"Retry-After": str(self.retry_after_s)} if fault == "500ra" else {}
            send_json(handler, 500, {"error": {"message": "injected internal error"}}, headers)
            return
        answer = self.llm.completion(
            prompt,
            self.model,
            self.logprobs and bool(request.get("logprobs")),
            int(request.get("top_logprobs") or 1),
            self.offlabel_word if fault == "offlabel" else None,
        )
        with self.lock:
            self.computed += 1
        if fault == "slow":
            time.sleep(self.slow_s)
        if fault == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
            handler.close_connection = True
            return
        limits = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": f"{self.retry_after_s}s"}
        send_json(handler, 200, answer, limits if fault == "exhausted" else None)


def standin_from_data(
    source: str, text_columns, label_column: str, label_words, test_size: float, seed: int, prompt: str = "{text}"
):
    """Train the stand-in on the pool of the pipeline's own split (never on the test split); return it
    with its test accuracy on the test texts wrapped in `prompt`, as the server sees them."""
    from ckd.data.split import split_pool_test
    from ckd.data.text import load_text_table

    table = load_text_table(source, text_columns, label_column)
    pool_ids, test_ids = split_pool_test(len(table.texts), test_size, seed)
    llm = TextClassifierLLM(table.texts[pool_ids], table.y[pool_ids], label_words, seed)
    prompted = [prompt.format(text=t, labels=", ".join(label_words)) for t in table.texts[test_ids]]
    return llm, llm.accuracy(prompted, table.y[test_ids])


def settings_from_params(path: str) -> dict:
    """The stand-in's settings from a text pipeline's params file, so nothing is spelled twice: the
    pipeline's own split (data.*, seed), its verbalizer, model name and port (teacher.*). A relative
    data.source is read as the pipeline reads it: from the working directory (run.sh: the repository's root)."""
    from pathlib import Path
    from urllib.parse import urlsplit

    from ckd.config import load_params, section_from_dict

    params = load_params(path)
    data, teacher = section_from_dict("data", params.get("data")), section_from_dict("teacher", params.get("teacher"))
    if data.text is None or teacher.label_words is None or teacher.url is None:
        raise SystemExit(f"{path}: needs data.text, teacher.label_words and teacher.url")
    return {
        "data": str(Path(data.source).resolve()),
        "text": list(data.text),
        "label": data.label,
        "label_words": list(teacher.label_words),
        "test_size": data.test_size,
        "seed": int(params.get("seed", 0)),
        "model": teacher.model_name,
        "port": urlsplit(teacher.url).port or 80,
        "prompt": teacher.prompt,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="examples.ag_news.llm_server",
        description="A stand-in OpenAI-compatible LLM "
        "server (a TF-IDF classifier, not a language model) on 127.0.0.1, for tests and "
        "the demo.",
    )
    p.add_argument("--params", default=None, help="take every setting below from a text pipeline's params.yaml")
    p.add_argument("--data")
    p.add_argument("--text", nargs="+")
    p.add_argument("--label", default="label")
    p.add_argument("--label-words", nargs="+")
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="standin-llm")
    p.add_argument("--port", type=int, default=8011)
    p.add_argument("--no-logprobs", action="store_true", help="answer without log-probabilities")
    p.add_argument("--report", default=None, help="write the stand-in's test accuracy here (JSON)")
    args = p.parse_args(argv)
    settings = (
        settings_from_params(args.params)
        if args.params
        else {
            "data": args.data,
            "text": args.text,
            "label": args.label,
            "label_words": args.label_words,
            "test_size": args.test_size,
            "seed": args.seed,
            "model": args.model,
            "port": args.port,
            "prompt": "{text}",
        }
    )
    if not settings["data"] or not settings["text"] or not settings["label_words"]:
        p.error("give --params, or --data, --text and --label-words")
    llm, test_accuracy = standin_from_data(
        settings["data"],
        settings["text"],
        settings["label"],
        settings["label_words"],
        settings["test_size"],
        settings["seed"],
        settings["prompt"],
    )
    if args.report:
        with open(args.report, "w") as handle:
            json.dump({"standin_llm_test_accuracy": test_accuracy}, handle)
    with StandinLLMServer(llm, settings["model"], port=settings["port"], logprobs=not args.no_logprobs) as server:
        print(
            f"stand-in LLM (a TF-IDF classifier, not a language model) {settings['model']} at {server.url}; "
            f"test accuracy {test_accuracy:.4f}",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
