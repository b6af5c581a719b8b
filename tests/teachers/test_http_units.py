import email.utils
import time

import pytest

from ckd.config import section_from_dict
from ckd.errors import ConfigError
from ckd.teachers.http_oip import _RateLimiter, _retry_after_seconds


def test_retry_after_seconds_and_http_date():
    assert _retry_after_seconds("3") == 3.0
    assert _retry_after_seconds(None) is None and _retry_after_seconds("soon") is None
    in_two_seconds = email.utils.formatdate(time.time() + 2, usegmt=True)
    assert 0.5 <= _retry_after_seconds(in_two_seconds) <= 2.5


def test_rate_limiter_spaces_calls():
    limiter = _RateLimiter(20.0)
    start = time.monotonic()
    for _ in range(5):
        limiter.acquire()
    assert time.monotonic() - start >= 0.19  # 5 calls at 20/s: starts 0, 50, ..., 200 ms


@pytest.mark.parametrize("values,parameter", [
    ({"kind": "http", "model_name": "m"}, "teacher.url"),
    ({"kind": "http", "url": "ftp://x", "model_name": "m"}, "teacher.url"),
    ({"kind": "http", "url": "http://127.0.0.1:1"}, "teacher.model_name"),
    ({"kind": "http", "url": "http://x", "model_name": "m", "token_env": "Bearer abc.def"}, "teacher.token_env"),
    ({"kind": "http", "url": "http://x", "model_name": "m", "concurrency": 0}, "teacher.concurrency"),
    ({"kind": "http", "url": "http://x", "model_name": "m", "timeout_s": 0}, "teacher.timeout_s"),
    ({"kind": "http", "url": "http://x", "model_name": "m", "backoff_s": -1}, "teacher.backoff_s"),
])
def test_http_parameters_are_validated(values, parameter):
    with pytest.raises(ConfigError) as error:
        section_from_dict("teacher", values)
    assert str(error.value).startswith(parameter + ":") and "unknown parameter" not in str(error.value)
