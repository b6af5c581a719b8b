import shutil

import pytest
import yaml

from ckd.errors import CkdError, ConfigError
from flows.pipeline import STAGES, StageFailed, apply_overrides, parse_set, retry_unless_user_error
from tests.conftest import PROJECT


def test_overrides_keep_comments_and_are_validated(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(PROJECT / "params.yaml", params)
    apply_overrides(params, {"teacher.budget": 150, "student.method": "kd"})
    text = params.read_text()
    assert "# hard cap on teacher calls" in text
    loaded = yaml.safe_load(text)
    assert loaded["teacher"]["budget"] == 150 and loaded["student"]["method"] == "kd"
    with pytest.raises(ConfigError, match="teacher.budget"):
        apply_overrides(params, {"teacher.budget": 0})
    with pytest.raises(CkdError, match="nosuch.key: no such parameter section"):
        apply_overrides(params, {"nosuch.key": 1})
    assert yaml.safe_load(params.read_text())["teacher"]["budget"] == 150  # nothing written on a bad override
    before = params.read_text()
    apply_overrides(params, {"teacher.budget": 3}, dry_run=True)
    assert params.read_text() == before


def test_parse_set():
    assert parse_set(["teacher.budget=200", "student.lr=[0.1, 0.2]"]) == {"teacher.budget": 200,
                                                                          "student.lr": [0.1, 0.2]}
    with pytest.raises(CkdError, match="expected KEY=VALUE"):
        parse_set(["teacher.budget"])


class FailedState:
    def __init__(self, error):
        self.error = error

    def result(self):
        raise self.error


def test_retry_only_crashes():
    assert retry_unless_user_error(None, None, FailedState(StageFailed("query", -9, "killed"))) is True
    assert retry_unless_user_error(None, None, FailedState(StageFailed("query", 2, "bad input"))) is False
    assert STAGES == ("teacher", "sample", "query", "check", "build", "train", "export", "validate")
