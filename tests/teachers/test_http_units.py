import email.utils

import pytest

from ckd.config import section_from_dict
from ckd.errors import ConfigError
from ckd.teachers import http_oip
from ckd.teachers.http_oip import _RateLimiter, _retry_after_seconds


class FrozenClock:
    """A clock that does not move by itself: the limiter's waits are what it asks to sleep."""

    def __init__(self):
        self.now, self.sleeps = 1_700_000_000.0, []

    def monotonic(self):
        return self.now

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 9))


def test_retry_after_seconds_and_http_date(monkeypatch):
    assert _retry_after_seconds("3") == 3.0
    assert _retry_after_seconds(None) is None and _retry_after_seconds("soon") is None
    clock = FrozenClock()
    monkeypatch.setattr(http_oip, "time", clock)
    assert _retry_after_seconds(email.utils.formatdate(clock.time() + 2, usegmt=True)) == 2.0
    assert _retry_after_seconds(email.utils.formatdate(clock.time() - 5, usegmt=True)) == 0.0  # already past


def test_rate_limiter_spaces_calls(monkeypatch):
    clock = FrozenClock()
    monkeypatch.setattr(http_oip, "time", clock)
    limiter = _RateLimiter(20.0)
    for _ in range(5):
        limiter.acquire()
    # 5 calls at 20/s, all at once: they start at 0, 50, ..., 200 ms
    assert clock.sleeps == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2], abs=1e-6)


@pytest.mark.parametrize(
    "values,parameter",
    [
        ({"kind": "http", "model_name": "m"}, "teacher.url"),
        ({"kind": "http", "url": "ftp://x", "model_name": "m"}, "teacher.url"),
        ({"kind": "http", "url": "http://127.0.0.1:1"}, "teacher.model_name"),
        ({"kind": "http", "url": "http://x", "model_name": "m", "token_env": "Bearer abc.def"}, "teacher.token_env"),
        ({"kind": "http", "url": "http://x", "model_name": "m", "concurrency": 0}, "teacher.concurrency"),
        ({"kind": "http", "url": "http://x", "model_name": "m", "timeout_s": 0}, "teacher.timeout_s"),
        ({"kind": "http", "url": "http://x", "model_name": "m", "backoff_s": -1}, "teacher.backoff_s"),
    ],
)
def test_http_parameters_are_validated(values, parameter):
    with pytest.raises(ConfigError) as error:
        section_from_dict("teacher", values)
    assert str(error.value).startswith(parameter + ":") and "unknown parameter" not in str(error.value)
