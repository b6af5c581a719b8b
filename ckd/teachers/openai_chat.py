"""A large language model behind an OpenAI-compatible chat-completions API (OpenAI, vLLM, llama.cpp's server,
...) as a text classifier, through the official `openai` SDK: one request per input, the prompt `teacher.prompt`
(with `{text}`, optionally `{labels}`) asking for one of the words `teacher.label_words` (one per class). The
class scores are log-probabilities:

    p_k = sum of exp(logprob(t)) over the first answer token's `top_logprobs` t that spell label word k,
    a word missing from the top list shares the probability the list leaves uncovered, and
    score_k = log(p_k / sum_j p_j)                      (renormalised over the label words);

where the server gives no log-probabilities, the parsed answer as a smoothed one-hot,
    p_k = (1 - eps) [k = answer] + eps / C    (eps = `teacher.onehot_smoothing`);
the query metrics count the answers of each kind (`score_source_logprobs`, `score_source_onehot`) and sum the
tokens spent (`usage`) with their estimated cost.

What a failure means for the budget (as for the http backend, see `ckd.store`): the SDK's own retries are off,
so every send is this module's and the count stays exact.
  * no connection made, a 429, or a 500/503 with `Retry-After`: nothing computed; retried (exponential backoff
    with jitter); when retries run out, a definite refusal (the count is given back). The provider's rate-limit
    headers are honoured: a 429 waits `retry-after-ms`, else `retry-after`, else the later of
    `x-ratelimit-reset-requests` / `-tokens`; an answer saying nothing is left (`x-ratelimit-remaining-*: 0`)
    holds every worker until its reset;
  * a timeout, a connection dropped after the request left, a 502/504 or a bare 500/503: the model may have
    run; unknown outcome, it stays counted (lost);
  * another 4xx (a wrong model name, a bad key): a definite refusal with the server's words (the count is
    given back);
  * an answer whose first word is no label word: paid, kept apart with its words and tokens.
The API key comes from the environment variable named by `teacher.token_env` only, and is masked in every
message.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal, cast

import numpy as np
from pydantic import Field, field_validator

from ckd.errors import TeacherError
from ckd.extras import require
from ckd.teachers.base import TEACHERS, AnswerUnusable, OutcomeUnknown, ScoredAnswer, TeacherSettings, settings_of
from ckd.teachers.http_oip import (
    MAX_RETRY_AFTER_S,
    BodyOverCap,
    HttpBackend,
    _retry_after_seconds,
    _Retryable,
    status_error,
)

DEFAULT_PROMPT = (
    "Classify the text into one of these categories: {labels}.\nAnswer with the category only.\n\n"
    "Text: {text}\nCategory:"
)


class OpenAITeacherConfig(TeacherSettings):
    """`teacher.kind: openai`: a large language model behind an OpenAI-compatible chat-completions API."""

    kind: Literal["openai"] = "openai"
    url: str | None = None  # the API's base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1
    model_name: str | None = None
    prompt: str = Field(DEFAULT_PROMPT, min_length=1, max_length=20_000)  # with {text}, optionally {labels}
    label_words: tuple[str, ...] | None = None  # the verbalizer: one word per class, in the order of the classes
    max_tokens: int | None = Field(None, ge=1, le=100_000)  # null: the server's default
    onehot_smoothing: float = Field(0.1, ge=0, lt=1)  # eps of the one-hot used where no log-probabilities come
    price_per_1k_input_tokens: float = Field(0.0, ge=0, le=1_000)
    price_per_1k_output_tokens: float = Field(0.0, ge=0, le=1_000)
    top_logprobs: int = Field(20, ge=1, le=20)  # the API's own maximum is 20
    concurrency: int = Field(1, ge=1, le=64)  # requests in flight
    timeout_s: float = Field(30.0, gt=0, le=3600)  # per request; a timeout is an unknown outcome (stays counted)
    max_retries: int = Field(5, ge=0, le=100)  # connection errors, 429 and 5xx that say nothing ran
    rate_limit_per_s: float | None = Field(None, gt=0)
    token_env: str | None = None  # the NAME of the environment variable holding the API key
    backoff_s: float = Field(0.5, gt=0, le=60)  # first retry's wait; doubles per retry, with jitter
    max_backoff_s: float = Field(30.0, gt=0, le=600)
    check_model: bool = True  # GET {url}/models (free) before any paid call
    max_response_mb: float = Field(64.0, gt=0, le=4096)  # a longer answer's body is refused, not read on
    # `batch`: OpenAI's Batch API (ckd.teachers.openai_batch): one job of up to `batch_requests` requests,
    # answered within `batch_completion_window`, at `batch_price_factor` of the per-1k prices (half price).
    api: Literal["chat", "batch"] = "chat"
    batch_requests: int = Field(1000, ge=1, le=50_000)  # requests per job (the API's maximum is 50,000)
    batch_poll_s: float = Field(30.0, gt=0, le=3600)  # between two looks at a job's status
    batch_max_wait_s: float = Field(86_400.0, gt=0)  # then the run stops; the next run resumes polling the job
    batch_completion_window: Literal["24h"] = "24h"
    batch_price_factor: float = Field(0.5, gt=0, le=1)

    @property
    def price_factor(self) -> float:
        """What the per-1k prices are multiplied by: the Batch API's discount, or 1."""
        return self.batch_price_factor if self.api == "batch" else 1.0

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise ValueError("must be the http(s):// base URL of an OpenAI-compatible API (e.g. .../v1)")
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("must not carry a user name or password; name the key's variable in teacher.token_env")
        return url

    @field_validator("model_name")
    @classmethod
    def _model_name(cls, name: str | None) -> str | None:
        if not name:
            raise ValueError("must name the model when teacher.kind is openai")
        return name

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, prompt: str) -> str:
        try:
            prompt.format(text="", labels="")
            if "{text}" in prompt:
                return prompt
        except (KeyError, IndexError, ValueError):
            pass
        raise ValueError("must hold {text} (and optionally {labels}); write other braces as {{ }}")

    @field_validator("label_words", mode="before")
    @classmethod
    def _label_words(cls, words: Any) -> Any:
        if not (
            isinstance(words, (list, tuple))
            and 2 <= len(words) <= 1000
            and all(isinstance(w, str) and w.strip() for w in words)
            and len({normalise_word(w) for w in words}) == len(words)
        ):
            raise ValueError("must list distinct, non-empty words, one per class (at least 2)")
        return tuple(words)

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, name: str | None) -> str | None:
        if name is not None and not name.isidentifier():
            raise ValueError("must be null or the NAME of an environment variable (never the key itself)")
        return name


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def duration_s(value: str | None) -> float | None:
    """An `x-ratelimit-reset-*` value ("1s", "6m0s", "20ms", "1h2m3.5s", or bare seconds) in seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[u] for n, u in parts)


def _said_retry_after(headers: Any) -> float | None:
    """`retry-after-ms` (OpenAI's), else `retry-after` (RFC 9110: seconds or an HTTP date)."""
    try:
        milliseconds = float(headers.get("retry-after-ms") or "")
    except ValueError:
        return _retry_after_seconds(headers.get("retry-after"))
    return max(0.0, milliseconds / 1000)


def rate_limit_wait_s(headers: Any) -> float | None:
    """How long a 429 asks to wait: `retry-after-ms`, else `retry-after`, else the later of
    `x-ratelimit-reset-requests` and `x-ratelimit-reset-tokens`; None when the answer says nothing."""
    said = _said_retry_after(headers)
    resets = [duration_s(headers.get(f"x-ratelimit-reset-{kind}")) for kind in ("requests", "tokens")]
    return said if said is not None else max((r for r in resets if r is not None), default=None)


def exhausted_wait_s(headers: Any) -> float | None:
    """After an answer: until the reset of a limit that has nothing left (`x-ratelimit-remaining-*: 0`)."""
    waits = [
        duration_s(headers.get(f"x-ratelimit-reset-{kind}"))
        for kind in ("requests", "tokens")
        if (headers.get(f"x-ratelimit-remaining-{kind}") or "").strip() == "0"
    ]
    return max(filter(None, waits), default=None)


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
    return cast(np.ndarray, np.log(mass / mass.sum()))


def onehot_scores(k: int, num_classes: int, smoothing: float) -> np.ndarray:
    p = np.full(num_classes, smoothing / num_classes)
    p[k] += 1.0 - smoothing
    return cast(np.ndarray, np.log(np.maximum(p, 1e-12)))


@TEACHERS.register("openai")
class OpenAIChatTeacher(HttpBackend):
    """One chat completion per input; `concurrency` requests in flight (the query stage's worker threads)."""

    batch_limit = 1
    config_model = OpenAITeacherConfig

    api: Literal["chat", "batch"] = "chat"  # OpenAIBatchTeacher's: "batch"
    settings: OpenAITeacherConfig

    @classmethod
    def from_config(cls, config: OpenAITeacherConfig) -> OpenAIChatTeacher:
        assert config.url and config.model_name and config.label_words  # the config model refuses them missing
        if config.api == "batch" and cls is OpenAIChatTeacher:
            from ckd.teachers.openai_batch import OpenAIBatchTeacher

            return OpenAIBatchTeacher.from_config(config)
        teacher = cls(
            config.url,
            config.model_name,
            config.label_words,
            prompt=config.prompt,
            max_tokens=config.max_tokens,
            smoothing=config.onehot_smoothing,
            concurrency=config.concurrency,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            rate_limit_per_s=config.rate_limit_per_s,
            token_env=config.token_env,
            top_logprobs=config.top_logprobs,
            backoff_s=config.backoff_s,
            max_backoff_s=config.max_backoff_s,
            check_model=config.check_model,
            max_response_mb=config.max_response_mb,
        )
        teacher.settings = config  # the validated params, with those no argument names (the Batch API's, prices)
        return teacher

    def __init__(
        self,
        url: str,
        model_name: str,
        label_words: Sequence[str],
        *,
        prompt: str = "{text}",
        max_tokens: int | None = None,
        smoothing: float = 0.1,
        concurrency: int = 1,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        rate_limit_per_s: float | None = None,
        token_env: str | None = None,
        top_logprobs: int = 20,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        check_model: bool = True,
        max_response_mb: float = 64.0,
    ) -> None:
        openai = require("openai", "teacher.kind openai")

        settings = settings_of(
            OpenAITeacherConfig,
            dict(
                url=url,
                model_name=model_name,
                label_words=tuple(label_words),
                prompt=prompt,
                max_tokens=max_tokens,
                onehot_smoothing=smoothing,
                concurrency=concurrency,
                timeout_s=timeout_s,
                max_retries=max_retries,
                rate_limit_per_s=rate_limit_per_s,
                token_env=token_env,
                top_logprobs=top_logprobs,
                backoff_s=backoff_s,
                max_backoff_s=max_backoff_s,
                check_model=check_model,
                max_response_mb=max_response_mb,
                api=self.api,
            ),
        )
        self._configure(settings)
        self.label_words = tuple(label_words)
        self.num_classes: int | None = len(self.label_words)  # declared: known before any call
        self.prompt, self.max_tokens, self.smoothing, self.top_logprobs = prompt, max_tokens, smoothing, top_logprobs
        self._resume_at = 0.0  # no request leaves before this time (the provider's rate-limit headers)
        # max_retries=0: the SDK must never re-send on its own, or a retried request could be computed twice
        # while counted once. "unused" satisfies the SDK where a local server needs no key.
        self.client = openai.OpenAI(
            base_url=self.url, api_key=self._token or "unused", max_retries=0, timeout=self.timeout_s
        )
        self._openai = openai
        recipe = dict(prompt=self.prompt, labels=self.label_words, max_tokens=self.max_tokens, smoothing=self.smoothing)
        # A new prompt or verbalizer asks a new question (answers of its own); the base URL, in one spelling
        # (normalise_url), is in the identity: one model name means different models at different providers.
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
        self.identity = f"openai:{self.url}:{model_name}:{digest}"
        api = "OpenAI Batch API" if self.api == "batch" else "OpenAI-compatible chat completions"
        self.description = f"{model_name} at {self.url} ({api})"
        self._lock = threading.Lock()
        if check_model:
            self._check_model()

    def _no_token(self, name: str) -> Exception:
        return TeacherError(f"teacher.token_env: the environment variable {name} is not set or empty")

    def _check_model(self) -> None:
        """Free: GET {url}/models before any paid call, so a wrong URL or model name costs nothing."""
        try:
            listed = [m.id for m in self.client.models.list()]
        except self._openai.NotFoundError:
            return  # some servers do not list their models
        except self._openai.APIStatusError as error:
            raise TeacherError(
                f"teacher.url: GET {self.url}/models answered HTTP {error.status_code}: {self._mask(str(error))[:200]}"
            ) from None
        except self._openai.APIConnectionError as error:
            raise TeacherError(
                f"teacher.url: cannot reach {self.url} ({type(error.__cause__ or error).__name__})"
            ) from None
        if listed and self.model_name not in listed:
            raise TeacherError(
                f"teacher.model_name: {self.model_name!r} is not served at {self.url}; served: {', '.join(listed[:10])}"
            )

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        if sample_shape != ():
            raise TeacherError(
                f"teacher.kind: openai asks about texts; the data holds arrays shaped {sample_shape} "
                "(set data.text to the text columns)"
            )
        if num_classes != self.num_classes:
            raise TeacherError(
                f"teacher.label_words: {self.num_classes} words for {num_classes} classes; give one "
                "word per class, in the order of the classes"
            )

    # -- the paid call -------------------------------------------------------------------------
    def _hold(self, seconds: float) -> None:
        """Every worker waits `seconds` (capped) before its next request: the provider said to."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + min(seconds, MAX_RETRY_AFTER_S))

    def _wait_for_limits(self) -> None:
        with self._lock:
            wait_s = self._resume_at - time.monotonic()
        if wait_s > 0:
            time.sleep(wait_s)

    def _request(self, text: str) -> dict[str, Any]:
        """The chat-completions request body for one input (sent as is, or as one line of a batch job)."""
        message = {"role": "user", "content": self.prompt.format(text=text, labels=", ".join(self.label_words))}
        request = {"model": self.model_name, "temperature": 0, "logprobs": True, "top_logprobs": self.top_logprobs}
        limit = {} if self.max_tokens is None else {"max_tokens": self.max_tokens}
        return {**request, "messages": [message], **limit}

    def _send_once(self, text: str) -> Any:
        openai = self._openai
        self._wait_for_limits()
        self.rate_limiter.acquire()
        try:
            # Streamed: the body is read with a byte cap and a total deadline (the SDK's timeout is per read,
            # so a body that never ends would never time out), then parsed as the SDK parses it.
            deadline = time.monotonic() + self.timeout_s
            with self.client.chat.completions.with_streaming_response.create(**self._request(text)) as response:
                status = response.http_response.status_code
                exhausted = exhausted_wait_s(response.headers)
                if exhausted:
                    self._hold(exhausted)
                try:
                    body = self._read_capped(response.iter_bytes(), status, deadline)
                except BodyOverCap:
                    raise
                except Exception as error:  # the HTTP client's own, once the answer began: as the SDK's below
                    raise OutcomeUnknown(f"{type(error).__name__} while reading the answer") from None
            return openai.types.chat.ChatCompletion.construct(**json.loads(body))
        except BodyOverCap as error:  # a 200 is computed and paid: unusable, kept apart
            raise AnswerUnusable(f"HTTP {error.status} with {error}") from None
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as error:
            raise AnswerUnusable(f"HTTP 200 with a body that is not a chat completion ({error})") from None
        except openai.APIConnectionError as error:  # APITimeoutError is one too
            cause = type(error.__cause__ or error).__name__
            if cause in ("ConnectError", "ConnectTimeout", "PoolTimeout"):  # never left: nothing can have run
                raise _Retryable(f"cannot connect ({cause})") from None
            raise OutcomeUnknown(f"{cause} after the request left") from None
        except openai.APIStatusError as error:
            status, headers = error.status_code, error.response.headers
            # a 429 waits as the rate-limit headers say, and every worker with it (the limit is the account's)
            retry_after = rate_limit_wait_s(headers) if status == 429 else _said_retry_after(headers)
            if status == 429 and retry_after is not None:
                self._hold(retry_after)
            words = self._mask(str(error))[:300]
            raise status_error(status, words, retry_after, f"{self.url}/chat/completions") from None

    def predict(self, x: np.ndarray) -> ScoredAnswer:
        rows, sources, usage = [], [], {"prompt_tokens": 0, "completion_tokens": 0}
        for text in np.asarray(x).reshape(-1):
            completion = self._with_retries(self._send_once, str(text))
            spent = getattr(completion, "usage", None)
            for key in usage:
                usage[key] += int(getattr(spent, key, 0) or 0)
            scores, source = self._scores(completion, usage)
            rows.append(scores)
            sources.append(source)
        return ScoredAnswer(np.stack(rows).astype(np.float32), usage, sources)

    def _scores(self, completion: Any, usage: dict[str, int]) -> tuple[np.ndarray, str]:
        choices = getattr(completion, "choices", None) or []
        if not choices or choices[0].message is None:
            raise AnswerUnusable("the answer has no choice or message", self._raw(str(completion), usage), usage)
        choice = choices[0]
        content = choice.message.content or ""
        k = label_of(next(iter(content.split()), ""), self.label_words)  # the first word
        if k is None:
            raise AnswerUnusable(
                f"the answer {content.strip()[:80]!r} is not one of teacher.label_words "
                f"({', '.join(self.label_words)})",
                self._raw(content, usage),
                usage,
            )
        tokens = getattr(getattr(choice, "logprobs", None), "content", None) or []
        if tokens and tokens[0].top_logprobs:
            top = [(t.token, float(t.logprob)) for t in tokens[0].top_logprobs]
            scores = scores_from_logprobs(top, self.label_words)
            if scores is not None:
                return scores, "logprobs"
        return onehot_scores(k, len(self.label_words), self.smoothing), "onehot"

    def _raw(self, words: str, usage: dict[str, int]) -> str:
        """What the quarantine keeps: the model's words (key masked) and what they cost."""
        return json.dumps({"answer": self._mask(words[:2000]), "usage": usage})
