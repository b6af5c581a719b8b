"""A large language model behind an OpenAI-compatible chat-completions API (OpenAI, vLLM, llama.cpp's
server, ...) as a text classifier, through the official `openai` SDK.

One request per input: the prompt `teacher.prompt` (with `{text}` and `{labels}`) asks for one of the
verbalizer's words `teacher.label_words` (one per class). The class scores are log-probabilities:

    p_k = sum of exp(logprob(t)) over the first answer token's `top_logprobs` t that spell label word k,
    a word missing from the top list shares the probability the list leaves uncovered, and
    score_k = log(p_k / sum_j p_j)                      (renormalised over the label words);

where the server gives no log-probabilities, the parsed answer as a smoothed one-hot,
    p_k = (1 - eps) [k = answer] + eps / C    (eps = `teacher.onehot_smoothing`),
and each stored answer says which (`score_source`: `logprobs` or `onehot`). Tokens spent (`usage`) are
stored beside every answer.

What a failure means for the budget (as for the http backend, see `ckd.budget`): the SDK's own retries
are off, so every send is this module's and the count stays exact.
  * no connection made, 429 (its `Retry-After` honoured) or 5xx: nothing computed; retried with
    exponential backoff and jitter; when retries run out, a definite refusal (the count is given back);
  * another 4xx (a wrong model name, a bad key): a definite refusal with the server's words;
  * a timeout or a connection dropped after the request left: unknown outcome, stays counted;
  * an answer whose first word is not a label word: paid, kept apart with the model's words.
The API key comes from the environment variable named by `teacher.token_env` only, and is masked in
every message.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import string
import threading
import time

import numpy as np

from ckd.errors import TeacherError
from ckd.teachers.base import TEACHERS, AnswerUnusable, OutcomeUnknown, ScoredAnswer, TeacherRefused
from ckd.teachers.http_oip import MAX_RETRY_AFTER_S, _RateLimiter, _retry_after_seconds

# The request never left (nothing can have been computed): safe to send again.
_NOT_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout")


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def normalise_word(word: str) -> str:
    """How a token or an answer is compared with a label word: trimmed, without punctuation, lower case."""
    return word.strip().strip(string.punctuation + " \t\n").lower()


def label_of(word: str, label_words: tuple[str, ...]) -> int | None:
    """The class whose label word `word` spells, or a unique label word it begins (a first sub-word token)."""
    norm = normalise_word(word)
    if not norm:
        return None
    labels = [normalise_word(w) for w in label_words]
    if norm in labels:
        return labels.index(norm)
    prefixed = [k for k, w in enumerate(labels) if len(norm) >= 2 and w.startswith(norm)]
    return prefixed[0] if len(prefixed) == 1 else None


def scores_from_logprobs(top: list[tuple[str, float]], label_words: tuple[str, ...]) -> np.ndarray | None:
    """Log-probabilities over the label words from the first token's top log-probabilities (see the
    module's formula), or None when no listed token spells a label word."""
    mass = np.zeros(len(label_words))
    for token, logprob in top:
        k = label_of(token, label_words)
        if k is not None:
            mass[k] += math.exp(logprob)
    if not mass.any():
        return None
    missing = mass == 0
    if missing.any():
        uncovered = max(0.0, 1.0 - sum(math.exp(lp) for _, lp in top))
        mass[missing] = max(uncovered / missing.sum(), 1e-8)
    return np.log(mass / mass.sum())


def onehot_scores(k: int, num_classes: int, smoothing: float) -> np.ndarray:
    p = np.full(num_classes, smoothing / num_classes)
    p[k] += 1.0 - smoothing
    return np.log(np.maximum(p, 1e-12))


@TEACHERS.register("openai")
class OpenAIChatTeacher:
    """One chat completion per input; `concurrency` requests in flight (the query stage's worker threads)."""

    batch_limit = 1

    @classmethod
    def from_config(cls, config) -> "OpenAIChatTeacher":
        return cls(config.url, config.model_name, config.label_words, prompt=config.prompt,
                   max_tokens=config.max_tokens, smoothing=config.onehot_smoothing, concurrency=config.concurrency,
                   timeout_s=config.timeout_s, max_retries=config.max_retries,
                   rate_limit_per_s=config.rate_limit_per_s, token_env=config.token_env, **dict(config.options))

    def __init__(self, url: str, model_name: str, label_words, prompt: str = "{text}", max_tokens: int | None = None,
                 smoothing: float = 0.1, concurrency: int = 1, timeout_s: float = 30.0, max_retries: int = 5,
                 rate_limit_per_s: float | None = None, token_env: str | None = None, top_logprobs: int = 20,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, check_model: bool = True):
        import openai

        self.url, self.model_name = url.rstrip("/"), model_name
        self.label_words = tuple(label_words)
        self.num_classes = len(self.label_words)
        self.prompt, self.max_tokens, self.smoothing = prompt, max_tokens, smoothing
        self.concurrency, self.max_retries = concurrency, max_retries
        self.top_logprobs, self.backoff_s, self.max_backoff_s = top_logprobs, backoff_s, max_backoff_s
        self.rate_limiter = _RateLimiter(rate_limit_per_s)
        self._token = None
        if token_env:
            self._token = os.environ.get(token_env)
            if not self._token:
                raise TeacherError(f"teacher.token_env: the environment variable {token_env} is not set or empty")
        # max_retries=0: the SDK must never re-send on its own, or a retried request could be computed twice
        # while counted once. "unused" satisfies the SDK where a local server needs no key.
        self.client = openai.OpenAI(base_url=self.url, api_key=self._token or "unused", max_retries=0,
                                    timeout=timeout_s)
        self._openai = openai
        recipe = json.dumps({"prompt": prompt, "labels": self.label_words, "max_tokens": max_tokens,
                             "smoothing": smoothing}, sort_keys=True)
        # A new prompt or verbalizer asks a different question: its answers never mix with the old ones.
        self.identity = f"openai:{self.url}:{model_name}:{hashlib.sha256(recipe.encode()).hexdigest()[:16]}"
        self._lock = threading.Lock()
        if check_model:
            self._check_model()

    def _mask(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _check_model(self) -> None:
        """Free: GET {url}/models before any paid call, so a wrong URL or model name costs nothing."""
        try:
            listed = [m.id for m in self.client.models.list()]
        except self._openai.NotFoundError:
            return  # some servers do not list their models
        except self._openai.APIStatusError as error:
            raise TeacherError(f"teacher.url: GET {self.url}/models answered HTTP {error.status_code}: "
                               f"{self._mask(str(error))[:200]}") from None
        except self._openai.APIConnectionError as error:
            raise TeacherError(f"teacher.url: cannot reach {self.url} ({type(error.__cause__ or error).__name__})") \
                from None
        if listed and self.model_name not in listed:
            raise TeacherError(f"teacher.model_name: {self.model_name!r} is not served at {self.url}; "
                               f"served: {', '.join(listed[:10])}")

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        if sample_shape != ():
            raise TeacherError(f"teacher.kind: openai asks about texts; the data holds arrays shaped {sample_shape} "
                               "(set data.text to the text columns)")
        if num_classes != self.num_classes:
            raise TeacherError(f"teacher.label_words: {self.num_classes} words for {num_classes} classes; give one "
                               "word per class, in the order of the classes")

    # -- the paid call -------------------------------------------------------------------------
    def _wait_s(self, error: _Retryable, attempt: int) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_S)
        exponential = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
        return exponential * (0.5 + random.random() / 2)  # "equal jitter"

    def _send_once(self, text: str):
        openai = self._openai
        self.rate_limiter.acquire()
        request = {"model": self.model_name, "temperature": 0, "logprobs": True, "top_logprobs": self.top_logprobs,
                   "messages": [{"role": "user",
                                 "content": self.prompt.format(text=text, labels=", ".join(self.label_words))}]}
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        try:
            return self.client.chat.completions.create(**request)
        except openai.APIConnectionError as error:  # APITimeoutError is one too
            cause = type(error.__cause__).__name__ if error.__cause__ is not None else type(error).__name__
            if cause in _NOT_SENT:
                raise _Retryable(f"cannot connect ({cause})") from None
            raise OutcomeUnknown(f"{cause} after the request left") from None
        except openai.APIStatusError as error:
            words = self._mask(str(error))[:300]
            status = error.status_code
            if status == 429 or status >= 500:
                retry_after = _retry_after_seconds(error.response.headers.get("Retry-After")) \
                    if status in (429, 503) else None
                raise _Retryable(f"HTTP {status}: {words}", retry_after) from None
            raise TeacherRefused(f"HTTP {status} from {self.url}/chat/completions: {words}") from None

    def _ask(self, text: str):
        for attempt in range(self.max_retries + 1):
            try:
                return self._send_once(text)
            except _Retryable as error:
                if attempt == self.max_retries:
                    raise TeacherRefused(f"{error} (after {self.max_retries} retries)") from None
                time.sleep(self._wait_s(error, attempt))

    def predict(self, x: np.ndarray) -> ScoredAnswer:
        rows, prompt_tokens, completion_tokens, sources = [], [], [], []
        for text in np.asarray(x).reshape(-1):
            completion = self._ask(str(text))
            usage = getattr(completion, "usage", None)
            prompt_tokens.append(int(getattr(usage, "prompt_tokens", 0) or 0))
            completion_tokens.append(int(getattr(usage, "completion_tokens", 0) or 0))
            scores, source = self._scores(completion, prompt_tokens, completion_tokens)
            rows.append(scores)
            sources.append(source)
        return ScoredAnswer(np.stack(rows).astype(np.float32),
                            {"prompt_tokens": np.asarray(prompt_tokens, np.int64),
                             "completion_tokens": np.asarray(completion_tokens, np.int64),
                             "score_source": np.asarray(sources)})

    def _scores(self, completion, prompt_tokens: list[int], completion_tokens: list[int]) -> tuple[np.ndarray, str]:
        usage = {"prompt_tokens": np.asarray(prompt_tokens, np.int64),
                 "completion_tokens": np.asarray(completion_tokens, np.int64)}
        choices = getattr(completion, "choices", None) or []
        if not choices or choices[0].message is None:
            raise AnswerUnusable("the answer has no choice or message", self._mask(str(completion)[:2000]), usage)
        choice = choices[0]
        content = choice.message.content or ""
        first_word = content.strip().split()[0] if content.strip() else ""
        k = label_of(first_word, self.label_words)
        if k is None:
            raise AnswerUnusable(f"the answer {content.strip()[:80]!r} is not one of teacher.label_words "
                                 f"({', '.join(self.label_words)})", self._mask(content[:2000]), usage)
        tokens = getattr(getattr(choice, "logprobs", None), "content", None) or []
        if tokens and tokens[0].top_logprobs:
            top = [(t.token, float(t.logprob)) for t in tokens[0].top_logprobs]
            scores = scores_from_logprobs(top, self.label_words)
            if scores is not None:
                return scores, "logprobs"
        return onehot_scores(k, self.num_classes, self.smoothing), "onehot"
