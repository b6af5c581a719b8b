"""A teacher behind an Open Inference Protocol v2 REST server (Triton, KServe, MLServer):
`POST {url}/v2/models/{name}[/versions/{v}]/infer`, once `GET /v2/health/ready` answers and the model's metadata
(`GET /v2/models/{name}`) gave its input's name, shape and datatype and its outputs.

What a failure means for the budget (see `ckd.store`):
  * no connection, a 429, or a 500/503 with `Retry-After` (the server ran nothing and says when to come back):
    retried (exponential backoff with jitter, `Retry-After` honoured); when retries run out, a definite refusal
    (the count is given back);
  * a 4xx other than 429 (and 501, 505): refused before the model ran; a definite refusal with the server's
    words (the count is given back);
  * a timeout, a connection dropped after the request left, a 502/504 from a gateway, a 500/503 without
    `Retry-After`: the model may have run; unknown outcome, it stays counted (lost), and the sample is asked
    again in a later pass only while budget remains;
  * a 200 whose body is not a usable [batch, classes] tensor: paid and kept apart with its words.
The identity is what the server reports (model name, version, platform, inputs, outputs), not the URL's
spelling. The bearer token comes from the environment variable named by `teacher.token_env`: sent as a header,
masked in every message before any truncation, never written; a URL with `user:password@` is refused.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import json
import logging
import os
import posixpath
import random
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

import numpy as np
from pydantic import Field, field_validator

from ckd.errors import CkdError, TeacherError
from ckd.teachers.base import (
    CLASS_NAMES_KEY,
    TEACHERS,
    ZIPMAP_ADVICE,
    AnswerUnusable,
    DeclaredModel,
    OutcomeUnknown,
    TeacherRefused,
    TeacherSettings,
    parse_class_names,
    settings_of,
)

if TYPE_CHECKING:
    from ckd.teachers.openai_chat import OpenAITeacherConfig

# the v2 protocol's tensor datatypes: FP<bits>, BOOL, and numpy's integer names in capitals
NUMPY_OF_DATATYPE = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "BOOL": np.bool_} | {
    name.upper(): getattr(np, name) for name in ("int64", "int32", "int16", "int8", "uint8")
}
FLOAT_DATATYPES = ("FP32", "FP64", "FP16")
MAX_RETRY_AFTER_S = 60.0


class BodyOverCap(Exception):
    """A body over `teacher.max_response_mb`, or still arriving at `teacher.timeout_s` (httpx's timeout is per
    read: a body that never ends, a chunk at a time, would never time out)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    """Nothing was computed (no connection, or an HTTP error status): safe to send again."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def status_error(status: int, words: str, retry_after: float | None, where: str) -> Exception:
    """What an HTTP error status means for the budget: a 429, or a 500/503 saying when to come back, that nothing
    ran; another 5xx (a gateway's 502/504, a bare 500/503) may follow a computed (billed) answer; a 4xx (and 501,
    505) is a definite refusal."""
    if status == 429 or (status in (500, 503) and retry_after is not None):
        return _Retryable(f"HTTP {status}: {words}", retry_after)
    if status >= 500 and status not in (501, 505):
        return OutcomeUnknown(f"HTTP {status} from {where} (the model may have run): {words}")
    return TeacherRefused(f"HTTP {status} from {where}: {words}")


class HttpBackend:
    """What the http and openai backends share: settings, the token masked in every message, and sends retried
    while they raise `_Retryable` (after `Retry-After`, capped, else jittered exponential backoff from `backoff_s`),
    then a definite refusal (the count is given back)."""

    settings: HttpTeacherConfig | OpenAITeacherConfig
    model_name: str
    _token: str | None

    def _configure(self, settings: HttpTeacherConfig | OpenAITeacherConfig) -> None:
        """The settings both backends share (`settings`: the backend's params model, kept as `self.settings`)."""
        assert settings.url and settings.model_name  # the constructors' required arguments
        self.settings = settings
        self.url, self.model_name = normalise_url(settings.url), settings.model_name
        self.concurrency, self.max_retries = settings.concurrency, settings.max_retries
        self.backoff_s, self.max_backoff_s = float(settings.backoff_s), float(settings.max_backoff_s)
        self.timeout_s, self.max_response_bytes = float(settings.timeout_s), int(settings.max_response_mb * 2**20)
        self.rate_limiter = _RateLimiter(settings.rate_limit_per_s)
        self._token = os.environ.get(settings.token_env) if settings.token_env else None
        if settings.token_env and not self._token:
            raise self._no_token(settings.token_env)

    def _no_token(self, name: str) -> Exception:
        return CkdError(f"teacher.token_env: environment variable {name} is not set or empty")

    def _read_capped(self, chunks: Any, status: int, deadline: float) -> bytes:
        """The body from `chunks`, refused past `max_response_mb` or the monotonic `deadline`, whatever is sent."""
        parts, size = [], 0
        for chunk in chunks:
            size += len(chunk)
            if size > self.max_response_bytes:
                mb = self.max_response_bytes / 2**20
                raise BodyOverCap(f"a body over teacher.max_response_mb={mb:g} MB (reading stopped)", status)
            if time.monotonic() > deadline:
                raise BodyOverCap(
                    f"a body still arriving after teacher.timeout_s={self.timeout_s:g} s (reading stopped)", status
                )
            parts.append(chunk)
        return b"".join(parts)

    def _mask(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _wait(self, retry_state: Any) -> float:
        error = retry_state.outcome.exception()
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_S)
        exponential = min(self.max_backoff_s, self.backoff_s * 2 ** (retry_state.attempt_number - 1))
        return float(exponential * (0.5 + random.random() / 2))  # "equal jitter"

    def _with_retries(self, send: Any, request: Any) -> Any:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        stop = stop_after_attempt(self.max_retries + 1)
        retrying = Retrying(retry=retry_if_exception_type(_Retryable), stop=stop, wait=self._wait, reraise=True)
        try:
            return retrying(send, request)
        except _Retryable as error:
            raise TeacherRefused(f"{error} (after {self.max_retries} retries)") from None


def _retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as delta-seconds or an HTTP date (RFC 9110, 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def normalise_url(url: str) -> str:
    """One spelling per server URL: lower-case scheme and host, no dot segments, no trailing slash."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:  # e.g. an IPv4 address with a leading zero, http://127.0.0.01:8000
        raise CkdError(f"teacher.url: {url} is not a well-formed URL ({error})") from None
    path = posixpath.normpath("/" + parsed.path.lstrip("/"))  # "/" + ".." stays "/"
    return str(parsed.copy_with(path=path, query=None, fragment=None)).rstrip("/")


class _MaskToken(logging.Filter):
    """httpx and httpcore log request lines; none of them may carry the token."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "***"), ()
        return True


class _RateLimiter:
    """At most `per_second` calls per second across threads (evenly spaced start times)."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next_start = 0.0
        self.lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


class HttpTeacherConfig(TeacherSettings):
    """`teacher.kind: http`: a model behind an Open Inference Protocol v2 server."""

    kind: Literal["http"] = "http"
    url: str | None = None
    model_name: str | None = None
    model_version: str | int | None = None  # null: the server's default version
    concurrency: int = Field(1, ge=1, le=64)  # requests in flight (each holds a batch in memory)
    timeout_s: float = Field(30.0, gt=0, le=3600)  # per request; a timeout is an unknown outcome (stays counted)
    max_retries: int = Field(5, ge=0, le=100)  # connection errors, 429 and 5xx
    rate_limit_per_s: float | None = Field(None, gt=0)
    token_env: str | None = None  # the NAME of the environment variable holding a bearer token
    verify_tls: bool = True
    backoff_s: float = Field(0.5, gt=0, le=60)  # first retry's wait; doubles per retry, with jitter
    max_backoff_s: float = Field(30.0, gt=0, le=600)
    ready_timeout_s: float = Field(30.0, gt=0, le=3600)  # how long to wait for GET /v2/health/ready
    max_response_mb: float = Field(64.0, gt=0, le=4096)  # a longer response body is refused, not read on

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise ValueError("must be an http:// or https:// URL when teacher.kind is http")
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError(
                "must not carry a user name or password; put a bearer token in the environment "
                "variable named by teacher.token_env"
            )
        try:  # urllib, not httpx: validating params must not load the HTTP client
            parts = urlsplit(url)
            host, _ = parts.hostname, parts.port  # `.port` raises on a port that is not a number in range
        except ValueError as error:
            raise ValueError(f"must be a well-formed http(s) URL ({str(error)[:80]})") from None
        if not host:
            raise ValueError("must name a host, e.g. http://127.0.0.1:8000")
        if host.replace(".", "").isdigit():  # dotted digits: an IPv4 address, four numbers 0-255, no leading zero
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"{host} is not an IPv4 address (four numbers 0-255, no leading zeros)") from None
        return url

    @field_validator("model_name")
    @classmethod
    def _model_name(cls, name: str | None) -> str | None:
        if not name:
            raise ValueError("must name the served model when teacher.kind is http")
        return name

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, name: str | None) -> str | None:
        if name is not None and not name.isidentifier():
            raise ValueError("must be null or the NAME of an environment variable (never the token itself)")
        return name


@TEACHERS.register("http")
class OpenInferenceTeacher(DeclaredModel, HttpBackend):
    config_model = HttpTeacherConfig
    settings: HttpTeacherConfig

    @classmethod
    def from_config(cls, config: HttpTeacherConfig) -> OpenInferenceTeacher:
        assert config.url and config.model_name  # the config model refuses them missing
        return cls(
            config.url,
            config.model_name,
            model_version=None if config.model_version is None else str(config.model_version),
            output=config.output,
            concurrency=config.concurrency,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            rate_limit_per_s=config.rate_limit_per_s,
            token_env=config.token_env,
            verify_tls=config.verify_tls,
            backoff_s=config.backoff_s,
            max_backoff_s=config.max_backoff_s,
            ready_timeout_s=config.ready_timeout_s,
            max_response_mb=config.max_response_mb,
        )

    def __init__(
        self,
        url: str,
        model_name: str,
        *,
        model_version: str | None = None,
        output: str | None = None,
        concurrency: int = 1,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        rate_limit_per_s: float | None = None,
        token_env: str | None = None,
        verify_tls: bool = True,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        ready_timeout_s: float = 30.0,
        max_response_mb: float = 64.0,
    ) -> None:
        import httpx  # here, not at the top: a stage that only validates params does not load it

        self._httpx = httpx

        if "@" in httpx.URL(url).netloc.decode():
            raise CkdError(
                "teacher.url: carries a user name or password; remove it and put a bearer token in the "
                "environment variable named by teacher.token_env"
            )
        settings = settings_of(
            HttpTeacherConfig,
            dict(
                url=url,
                model_name=model_name,
                model_version=model_version,
                output=output,
                concurrency=concurrency,
                timeout_s=timeout_s,
                max_retries=max_retries,
                rate_limit_per_s=rate_limit_per_s,
                token_env=token_env,
                verify_tls=verify_tls,
                backoff_s=backoff_s,
                max_backoff_s=max_backoff_s,
                ready_timeout_s=ready_timeout_s,
                max_response_mb=max_response_mb,
            ),
        )
        self._configure(settings)
        self.model_version = model_version
        if self._token and not (self._token.isascii() and self._token.isprintable()):
            raise CkdError(
                f"teacher.token_env: the token in {token_env} has a non-ASCII or control character; an "
                "HTTP header carries printable ASCII only (the token is not shown)"
            )
        if self._token:
            for name in ("httpx", "httpcore"):
                logging.getLogger(name).addFilter(_MaskToken(self._token))
        self.client = httpx.Client(
            base_url=self.url,
            timeout=self.timeout_s,
            verify=verify_tls,
            headers={"Authorization": f"Bearer {self._token}"} if self._token else {},
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )
        version = f"/versions/{self.model_version}" if self.model_version else ""
        self.model_path = f"/v2/models/{model_name}{version}"
        self.where = f"{self.url}{self.model_path}"
        self._wait_ready(ready_timeout_s)
        metadata = self._get_json(self.model_path, "model metadata")
        try:
            self._read_metadata(metadata, output)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:  # of the wrong shape
            raise TeacherError(
                f"{self.where}: the model's metadata is malformed ({type(error).__name__}: "
                f"{str(error)[:120]}); a v2 server declares inputs and outputs with name, datatype and shape"
            ) from None
        version = self.model_version or (metadata.get("versions") or [None])[-1] or "unversioned"
        signature = json.dumps([metadata.get(key) for key in ("platform", "inputs", "outputs")], sort_keys=True)
        digest = hashlib.sha256(signature.encode()).hexdigest()[:16]
        self.identity = f"http:{metadata.get('name') or model_name}:{version}:{digest}:{self.output_name}"
        self.description = f"{model_name} version {version} served at {self.url}"

    def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, bytes]:
        """(status, headers, body) of one request, the body read with a byte cap and a total deadline."""
        deadline = time.monotonic() + self.timeout_s
        with self.client.stream(method, path, **kwargs) as response:
            body = self._read_capped(response.iter_bytes(), response.status_code, deadline)
            return response.status_code, response.headers, body

    # -- set-up (free calls) -------------------------------------------------------------------
    def _wait_ready(self, timeout_s: float) -> None:
        httpx = self._httpx
        deadline = time.monotonic() + timeout_s
        last = ""
        while True:
            try:
                status, _, _ = self._request("GET", "/v2/health/ready")
                if status == 200:
                    return
                last = f"HTTP {status}"
            except httpx.HTTPError as error:
                last = type(error).__name__
            except BodyOverCap as error:
                last = str(error)
            if time.monotonic() > deadline:
                raise TeacherError(
                    f"teacher.url: {self.url} is not ready after {timeout_s:.0f} s (GET /v2/health/ready: {last})"
                )
            time.sleep(0.5)

    def _get_json(self, path: str, what: str) -> dict[str, Any]:
        httpx = self._httpx
        try:
            status, _, content = self._request("GET", path)
        except httpx.HTTPError as error:
            raise TeacherError(
                f"teacher.url: cannot read {what} at {self.url}{path} ({type(error).__name__})"
            ) from None
        except BodyOverCap as error:
            raise TeacherError(f"teacher.url: {what} at {self.url}{path} is {error}") from None
        if status != 200:
            raise TeacherError(
                f"teacher.model_name: {what} at {self.url}{path} answered HTTP "
                f"{status}: {self._mask(content.decode('utf-8', 'replace'))[:200]}"
            )
        try:
            return cast(dict[str, Any], json.loads(content))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise TeacherError(f"teacher.url: {what} at {self.url}{path} is not JSON") from None

    def _read_metadata(self, metadata: dict[str, Any], output: str | None) -> None:
        """The model's declared input and outputs, and the output holding the scores."""
        inputs = metadata.get("inputs") or []
        if len(inputs) != 1:
            raise TeacherError(f"{self.where}: the model must declare exactly one input, declares {len(inputs)}")
        self.input_name = inputs[0]["name"]
        self.input_datatype = inputs[0]["datatype"]
        if self.input_datatype not in NUMPY_OF_DATATYPE:
            raise TeacherError(f"{self.where}: input datatype {self.input_datatype} is not supported")
        self.input_dtype = NUMPY_OF_DATATYPE[self.input_datatype]
        self.sample_dims = [int(d) for d in inputs[0]["shape"][1:]]
        outputs = metadata.get("outputs") or []
        names = [o["name"] for o in outputs]
        if output is not None:
            if outputs and output not in names:
                raise TeacherError(
                    f"teacher.output: {output!r} is not an output of {self.model_name}; outputs: {', '.join(names)}"
                )
            chosen: dict[str, Any] = next((o for o in outputs if o["name"] == output), {"name": output, "shape": []})
            if chosen.get("datatype", "FP32") not in FLOAT_DATATYPES:  # before any call: no answer to quarantine
                raise TeacherError(
                    f"teacher.output: {output!r} of {self.model_name} is declared {chosen['datatype']}, not a float "
                    f"tensor [batch, classes]; {ZIPMAP_ADVICE}"
                )
        else:
            floats = [o for o in outputs if o.get("datatype") in FLOAT_DATATYPES and len(o.get("shape", [])) == 2]
            if len(floats) > 1:
                raise TeacherError(
                    f"teacher.output: {self.model_name} has {len(floats)} float [batch, classes] outputs "
                    f"({', '.join(o['name'] for o in floats)}); name the one holding the scores"
                )
            if not floats:
                raise TeacherError(
                    f"{self.where}: no float output shaped [batch, classes]; "
                    f"name one with teacher.output ({ZIPMAP_ADVICE})"
                )
            chosen = floats[0]
        self.output_name = chosen["name"]
        shape = chosen.get("shape") or []
        self.num_classes = int(shape[1]) if len(shape) == 2 and int(shape[1]) > 0 else None
        declared = (chosen.get("parameters") or {}).get(CLASS_NAMES_KEY)  # the scores output's, else the model's
        if declared is None:
            declared = (metadata.get("parameters") or {}).get(CLASS_NAMES_KEY)
        self.class_names = parse_class_names(declared, f"{self.where}: metadata parameters")

    # -- the paid call -------------------------------------------------------------------------
    def _send_once(self, body: dict[str, Any]) -> dict[str, Any]:
        httpx = self._httpx
        self.rate_limiter.acquire()
        try:
            status, headers, content = self._request("POST", f"{self.model_path}/infer", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise _Retryable(f"cannot connect ({type(error).__name__})") from None
        except (httpx.TimeoutException, httpx.TransportError) as error:
            raise OutcomeUnknown(f"{type(error).__name__} after the request left") from None
        except BodyOverCap as error:
            if error.status == 200:  # computed and answered: paid, and unusable
                raise AnswerUnusable(f"HTTP 200 with {error}") from None
            raise OutcomeUnknown(f"HTTP {error.status} with {error}") from None
        # masked first: a cut must not leave half a token
        words = self._mask(content.decode("utf-8", "replace")).strip()[:300]
        if status == 200:
            try:
                return cast(dict[str, Any], json.loads(content))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise AnswerUnusable("HTTP 200 with a body that is not JSON", words) from None
        raise status_error(status, words, _retry_after_seconds(headers.get("Retry-After")), f"{self.where}/infer")

    def predict(self, x: np.ndarray) -> np.ndarray:
        batch = self._batch(x)
        tensor = {"name": self.input_name, "shape": list(batch.shape), "datatype": self.input_datatype}
        tensor["data"] = batch.reshape(-1).tolist()
        body = {"id": uuid.uuid4().hex, "inputs": [tensor], "outputs": [{"name": self.output_name}]}
        return self._scores(self._with_retries(self._send_once, body))

    def _scores(self, answer: dict[str, Any]) -> np.ndarray:
        raw = self._mask(json.dumps(answer))[:2000]
        if "error" in answer:
            raise AnswerUnusable(f"the server answered an error: {self._mask(str(answer['error']))[:200]}", raw)
        outputs = {o.get("name"): o for o in answer.get("outputs", []) if isinstance(o, dict)}
        if self.output_name not in outputs:
            raise AnswerUnusable(
                f"no output {self.output_name!r} in the answer (has {', '.join(map(str, outputs))})", raw
            )
        out = outputs[self.output_name]
        datatype = out.get("datatype")
        dtype = NUMPY_OF_DATATYPE.get(datatype) if isinstance(datatype, str) else None
        if dtype is None:
            raise AnswerUnusable(f"output datatype {out.get('datatype')!r} is not supported", raw)
        try:
            return np.asarray(out["data"], dtype=dtype).reshape(out["shape"])
        except (KeyError, TypeError, ValueError) as error:
            raise AnswerUnusable(f"output {self.output_name!r} is malformed ({error})", raw) from None
