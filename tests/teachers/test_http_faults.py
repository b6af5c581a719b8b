"""The `http` teacher against KServe's real model server on 127.0.0.1, directly and through a
fault-injecting proxy that counts what the server computed."""

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ckd.data import write_arrays
from ckd.errors import CkdError, TeacherError
from ckd.query import run_query
from ckd.store import open_store
from ckd.teachers import http_oip
from ckd.teachers.http_oip import OpenInferenceTeacher
from ckd.teachers.onnx_file import OnnxFileTeacher
from tests.helpers import PROJECT, linear_onnx_teacher
from tests.helpers.fault_proxy import FaultProxy, at
from tests.helpers.faults import SCENARIOS, run_scenario, run_sigkill_case
from tests.helpers.servers import KServeTeacher, server_python

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not server_python().exists() and not os.environ.get("CI"),
        reason="the server environment (.venv-server) is built by `make install`",
    ),
]

TOKEN = "s3cr3t-Token-9f8e7d"


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    return linear_onnx_teacher(tmp_path_factory.mktemp("teacher") / "teacher.onnx", input_shape=[1, 8, 8])


@pytest.fixture(scope="module")
def server(teacher_file):
    with KServeTeacher(teacher_file) as url:
        yield url


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(3)
    return np.arange(500, 700), rng.integers(0, 17, size=(200, 8, 8)).astype(np.float32)


def test_scores_over_http_match_the_onnx_file(server, teacher_file, samples):
    ids, x = samples
    teacher = OpenInferenceTeacher(server, "teacher")
    assert (teacher.input_name, teacher.sample_dims, teacher.num_classes) == ("x", [1, 8, 8], 10)
    assert teacher.identity.startswith("http:teacher:unversioned:")  # what the server reports, not the URL
    over_http = teacher.predict(x[:64])
    assert np.abs(over_http - OnnxFileTeacher(str(teacher_file)).predict(x[:64])).max() <= 1e-5


def test_wrong_model_or_shape_fails_before_any_call(server, samples, tmp_path):
    with pytest.raises(TeacherError, match="teacher.model_name: model metadata .* answered HTTP 404"):
        OpenInferenceTeacher(server, "no-such-model")
    ids, x = samples
    with FaultProxy(server, lambda i: "ok") as proxy:
        teacher = OpenInferenceTeacher(proxy.url, "teacher")
        with pytest.raises(TeacherError, match="takes 64 values per sample"):
            run_query(teacher, ids[:10], x[:10, :4, :4], 10, 10, tmp_path, progress=False)
        assert proxy.computed == 0 and proxy.requests == 0


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_fault_case_keeps_the_invariants(scenario, server, samples, tmp_path):
    ids, x = samples
    result = run_scenario(scenario, server, ids, x, 10, tmp_path)
    assert result["problems"] == []
    assert result["server_computed"] <= scenario.budget
    assert result["outcome"].startswith("completed")
    assert result["unanswered"] == scenario.expect_unanswered
    assert result["stored"] == scenario.selected - scenario.expect_unanswered
    assert result["teacher_calls"] == result["stored"] + result["lost"] <= scenario.budget


def test_retry_after_is_honoured(server, samples, tmp_path, monkeypatch):
    waits = []
    choose_wait = http_oip.OpenInferenceTeacher._wait

    def recorded(self, retry_state):
        waits.append(choose_wait(self, retry_state))
        return waits[-1]

    monkeypatch.setattr(http_oip.OpenInferenceTeacher, "_wait", recorded)
    ids, x = samples
    result = run_scenario(next(s for s in SCENARIOS if s.name.startswith("429")), server, ids, x, 10, tmp_path)
    assert result["faults"]["429"] == 2 and result["problems"] == []
    assert waits == [1.0, 1.0]  # each 429's Retry-After: 1, not the exponential backoff


@pytest.mark.parametrize("fault,words", [("garbage", "expected (10, 10)"), ("error_body", "model exploded")])
def test_unusable_answers_are_kept_apart_with_the_servers_words(fault, words, server, samples, tmp_path):
    ids, x = samples
    with FaultProxy(server, at({1: fault})) as proxy:
        teacher = OpenInferenceTeacher(proxy.url, "teacher", concurrency=1)
        with pytest.raises(TeacherError, match="unusably") as error:
            run_query(teacher, ids[:40], x[:40], 10, 40, tmp_path, batch_size=10, progress=False)
    assert words in str(error.value)
    store = open_store(str(tmp_path))
    (summary,) = store.summaries()
    assert (summary.rejected, summary.answered) == (10, 10)  # the batch answered before it is kept too
    (quarantined,) = store.quarantined()
    assert words.split("(")[0].strip() in quarantined[1] + quarantined[2]


def test_sigkill_then_rerun_over_http(server, samples, tmp_path):
    ids, x = samples
    result = run_sigkill_case(server, ids, x, 10, tmp_path)
    assert result["problems"] == [] and result["outcome"] == "completed"
    assert 0 < result["computed_at_kill"] < 60
    assert result["server_computed"] <= result["budget"] and result["stored"] == 60


def test_token_is_sent_and_never_written_or_logged(server, samples, tmp_path):
    ids, x = samples
    write_arrays(
        tmp_path / "pool.npz",
        ids=ids,
        x=x,
        class_names=np.asarray([str(c) for c in range(10)]),
        is_image=np.asarray(True),
    )
    write_arrays(tmp_path / "selected.npz", ids=ids[:30])
    with FaultProxy(server, at({1: "error_body"})) as proxy:
        params = {
            "teacher": {
                "kind": "http",
                "url": proxy.url,
                "model_name": "teacher",
                "budget": 30,
                "batch_size": 10,
                "token_env": "CKD_TEST_TEACHER_TOKEN",
                "store": str(tmp_path / "store"),
            }
        }
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "ckd.stages.query",
                "--params",
                str(tmp_path / "params.yaml"),
                "--pool",
                str(tmp_path / "pool.npz"),
                "--selected",
                str(tmp_path / "selected.npz"),
                "--out",
                str(tmp_path / "queried.npz"),
                "--metrics",
                str(tmp_path / "query.json"),
            ],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            env={**os.environ, "CKD_TEST_TEACHER_TOKEN": TOKEN},
        )
    assert f"Bearer {TOKEN}" in proxy.authorizations
    assert run.returncode == 2 and "model exploded" in run.stderr  # a failing run, its message printed
    assert TOKEN not in run.stdout + run.stderr
    assert "HTTP Request: POST" in run.stderr  # httpx's request lines are logged, and carry no credentials
    assert_secret_nowhere(TOKEN, tmp_path)


def assert_secret_nowhere(secret: str, folder) -> None:
    """Every file, read as bytes, holds the secret in none of the encodings text takes on disk: UTF-8 (JSON,
    YAML, logs, SQLite) and UTF-32 (numpy's string arrays in .npz), also inside zip members (.npz)."""
    import zipfile

    needles = [secret.encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")]
    searched = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        blobs = [path.read_bytes()]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                blobs += [archive.read(name) for name in archive.namelist()]
        for blob in blobs:
            assert not any(needle in blob for needle in needles), path
        searched.append(path.name)
    assert len(searched) >= 4 and "ckd-store.sqlite" in searched  # the search saw the store, params and arrays


def test_the_secret_search_finds_a_secret_in_numpy_strings(tmp_path):
    write_arrays(tmp_path / "leak.npz", raw=np.asarray([f"Bearer {TOKEN}"]))
    for name in ("a", "b", "ckd-store.sqlite"):
        (tmp_path / name).write_text("nothing")
    with pytest.raises(AssertionError, match="leak.npz"):
        assert_secret_nowhere(TOKEN, tmp_path)


def test_another_spelling_of_the_servers_url_is_the_same_teacher(server, samples, tmp_path):
    ids, x = samples
    with FaultProxy(server, lambda i: "ok") as proxy:
        first = run_query(
            OpenInferenceTeacher(proxy.url, "teacher"),
            ids[:30],
            x[:30],
            10,
            30,
            tmp_path,
            batch_size=10,
            progress=False,
        )
        port = proxy.url.rsplit(":", 1)[1]
        for spelling in (f"http://localhost:{port}/.", f"HTTP://127.0.0.1:{port}/v2/..//"):
            again = run_query(
                OpenInferenceTeacher(spelling, "teacher"),
                ids[:30],
                x[:30],
                10,
                30,
                tmp_path,
                batch_size=10,
                progress=False,
            )
            assert again.calls_this_run == 0 and len(again.ids) == 30
        assert proxy.computed == 30 == first.calls_spent_total


def test_a_password_in_the_url_is_refused_in_one_line(tmp_path):
    params = {"teacher": {"kind": "http", "url": "http://user:pa55@127.0.0.1:9/", "model_name": "teacher"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ckd.stages.query",
            "--params",
            str(tmp_path / "params.yaml"),
            "--pool",
            "p",
            "--selected",
            "s",
            "--out",
            "o",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "pa55" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert "teacher.url" in line and "teacher.token_env" in line


def test_missing_token_variable_is_a_clear_error(server):
    with pytest.raises(CkdError, match="teacher.token_env: environment variable CKD_ABSENT_TOKEN is not set"):
        OpenInferenceTeacher(server, "teacher", token_env="CKD_ABSENT_TOKEN")
