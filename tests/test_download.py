"""The `download` stage: a data file from its public source (a local HTTP server here), an offline mirror
looked up first, the SHA-256 pinned; each failure one line that says how to get the file. And a copy of the
project without ../shared runs the AG News example end to end from the mirror, against its stand-in."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from ckd.config import section_from_dict
from ckd.data import Pool, TestSet
from ckd.data.download import KNOWN, MIRROR_ENV, fetch, fetch_known
from ckd.errors import CkdError, ConfigError
from ckd.stages.download import download
from tests.helpers import PROJECT, with_changes
from tests.helpers.text import LABEL_WORDS, write_text_csv

PAYLOAD = b"label,title,description\n1,A,minister election\n2,B,match goal\n"
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, request paths seen)."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "news.csv").write_bytes(PAYLOAD)
    seen: list[str] = []

    class Handler(_Quiet):
        def do_GET(self):
            seen.append(self.path)
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{_free_port()}/news.csv"  # nothing listens: connection refused, as with no network


@pytest.fixture(autouse=True)
def _no_mirror_env(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)


def test_fetches_from_the_url_and_checks_the_sha256(served, tmp_path):
    url, seen = served
    target = tmp_path / "data" / "news.csv"
    record = fetch(f"{url}/news.csv", SHA, target)
    assert target.read_bytes() == PAYLOAD and record == {"path": str(target), "sha256": SHA, "from": f"{url}/news.csv"}
    assert fetch(f"{url}/news.csv", SHA, target)["from"] == "present" and seen == ["/news.csv"]  # fetched once
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".part")]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file (not mkstemp's 0600)


def test_wrong_checksum_from_the_url_is_refused_and_nothing_lands(served, tmp_path):
    url, _ = served
    target = tmp_path / "data" / "news.csv"
    with pytest.raises(CkdError) as error:
        fetch(f"{url}/news.csv", "0" * 64, target)
    message = str(error.value)
    assert "\n" not in message and SHA in message and "data.download.sha256" in message and MIRROR_ENV in message
    assert not target.exists() and not list(target.parent.iterdir())  # no partial file left behind


def test_no_network_and_missing_file_say_how_to_get_it(served, tmp_path):
    url, _ = served
    for bad_url in (_closed_port_url(), f"{url}/missing.csv"):
        with pytest.raises(CkdError) as error:
            fetch(bad_url, SHA, tmp_path / "news.csv")
        message = str(error.value)
        assert "\n" not in message and f"download {bad_url} to " in message and MIRROR_ENV in message, message
        assert not (tmp_path / "news.csv").exists()


def test_the_mirror_is_looked_up_first_and_checked(served, tmp_path, monkeypatch):
    url, seen = served
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "news.csv").write_bytes(PAYLOAD)
    record = fetch(f"{url}/news.csv", SHA, tmp_path / "a" / "news.csv", mirror=str(mirror))
    assert record["from"] == f"mirror {mirror}" and seen == []  # no request reached the server
    monkeypatch.setenv(MIRROR_ENV, f"{tmp_path / 'empty'}{os.pathsep}{mirror}")  # the environment's folders
    assert fetch(_closed_port_url(), SHA, tmp_path / "b" / "news.csv")["from"] == f"mirror {mirror}"
    (mirror / "news.csv").write_bytes(PAYLOAD + b"3,C,shares\n")  # a mirror copy of other bytes is refused
    with pytest.raises(CkdError, match=r"mirror's copy has SHA-256 [0-9a-f]{64}, not the pinned") as error:
        fetch(f"{url}/news.csv", SHA, tmp_path / "c" / "news.csv")
    assert "\n" not in str(error.value) and not (tmp_path / "c" / "news.csv").exists() and seen == []


def test_a_present_file_of_other_bytes_is_left_alone(served, tmp_path):
    url, seen = served
    target = tmp_path / "news.csv"
    target.write_bytes(b"my own edits\n")
    with pytest.raises(CkdError, match="exists with SHA-256 .* it is left as it is"):
        fetch(f"{url}/news.csv", SHA, target)
    assert target.read_bytes() == b"my own edits\n" and seen == []


def test_stage_without_download_is_a_note_and_parameters_are_checked(tmp_path):
    assert download(section_from_dict("data", {}))["from"] is None
    for bad, parameter in [
        ({"url": "ftp://x/f.csv", "sha256": SHA}, "data.download.url"),
        ({"url": "https://x/f.csv", "sha256": "abc"}, "data.download.sha256"),
        ({"url": "https://x/f.csv", "sha256": SHA, "checksum": SHA}, "data.download.checksum"),
    ]:
        with pytest.raises(ConfigError) as error:
            section_from_dict("data", {"download": bad})
        assert str(error.value).startswith(parameter), error.value
    csv = tmp_path / "news.csv"
    csv.write_bytes(PAYLOAD)
    data = section_from_dict("data", {"source": str(csv), "download": {"url": "https://x/f.csv", "sha256": SHA}})
    assert download(data) == {"path": str(csv), "sha256": SHA, "from": "present"}  # path defaults to data.source


def test_known_data_sets_match_the_shared_copies(tmp_path):
    """The table's checksums are those of ../shared/data (skipped where that folder is absent)."""
    shared = PROJECT.parent / "shared" / "data"
    if not shared.is_dir():
        pytest.skip("no ../shared/data on this machine")
    for name, remote in KNOWN.items():
        assert remote.url.startswith("https://") and len(remote.sha256) == 64
        assert fetch_known(name, tmp_path, mirror=str(shared)) == tmp_path / name
    with pytest.raises(CkdError, match="not a known data set"):
        fetch_known("imagenet.tar", tmp_path)


def test_a_missing_known_data_set_says_where_it_comes_from(tmp_path):
    """The benchmarks' and examples' data (`KNOWN`): a missing copy is one line naming its public source, the
    pinned checksum and how to fetch it; a file of any other name gets the plain line."""
    from ckd.data.sources import load_source
    from ckd.data.text import load_text_table

    params = yaml.safe_load((PROJECT / "examples" / "pendigits" / "params.yaml").read_text())
    data = section_from_dict("data", {**params["data"], "source": str(tmp_path / "pendigits_train.csv")})
    with pytest.raises(CkdError) as missing:
        load_source(data.source, data)
    remote = KNOWN["pendigits_train.csv"]
    (line,) = str(missing.value).splitlines()
    assert line.startswith(f"{tmp_path / 'pendigits_train.csv'}: file not found (data.source); ")
    assert remote.url in line and remote.sha256 in line and "fetch_known" in line and MIRROR_ENV in line
    with pytest.raises(CkdError) as text:
        load_text_table(str(tmp_path / "ag_news_test.csv"), ["title", "description"])
    assert KNOWN["ag_news_test.csv"].url in str(text.value) and len(str(text.value).splitlines()) == 1
    with pytest.raises(CkdError) as other:
        load_source(str(tmp_path / "mine.csv"), data)
    assert str(other.value) == f"{tmp_path / 'mine.csv'}: file not found (data.source)"


# The example's params made small for the whole run on 80 texts (the data path is the example's own).
AG_NEWS_SMALL = {
    "data.test_size": 20,
    "teacher.budget": 30,
    "student.steps": 100,
    "student.eval_every": 50,
    "student.method_args": {"temperature": [2.0]},
    "export.int8_calibration_samples": 32,
    "validate.min_accuracy": 0.0,  # 20 test texts: the point is the path through every stage, not the gates
    "validate.max_int8_drop": 1.0,
    "validate.latency_runs": 5,
}


@pytest.mark.slow
def test_fresh_clone_without_shared_runs_the_ag_news_example_end_to_end(tmp_path):
    """A copy of the project alone (no ../shared beside it), the mirror pointed at a folder holding a small
    AG-News-shaped CSV pinned by its checksum: without the mirror `dvc repro` stops in `download` with one line
    saying how to get the file; with it, as run.sh does, `dvc repro download`, the example's stand-in LLM server
    (started from the clone, on the params' 127.0.0.1 port) and `dvc repro` run every stage through validate,
    the teacher paid at most the budget and the shipped text bundle names the classes with the label words."""
    root = tmp_path / "clone"
    root.mkdir()
    outputs = shutil.ignore_patterns("__pycache__", "data", "models", "teacher_outputs", "metrics")  # its outputs
    for item in ("ckd", "serving", "examples/ag_news"):
        shutil.copytree(PROJECT / item, root / item, ignore=None if item == "ckd" else outputs)
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")  # the one pipeline; run.sh runs it with the example's params
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_text_csv(mirror / "ag_news_test.csv", count=80, seed=1)
    params = with_changes(yaml.safe_load((root / "examples" / "ag_news" / "params.yaml").read_text()), AG_NEWS_SMALL)
    params["data"]["download"]["url"] = _closed_port_url()  # no test reaches the network
    params["data"]["download"]["sha256"] = hashlib.sha256((mirror / "ag_news_test.csv").read_bytes()).hexdigest()
    params["teacher"]["url"] = f"http://127.0.0.1:{_free_port()}/v1"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert not (root.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k not in (MIRROR_ENV, "CKD_PLUGINS")}  # a clone: no tests/
    env.update(PYTHONPATH=str(root), HF_HUB_OFFLINE="1", DVC_NO_ANALYTICS="1")
    env.update({f"GIT_{who}_{what}": "t" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")})
    dvc = str(Path(sys.executable).with_name("dvc"))
    # a clone holds a commit (DVCLive, in train, fails in a git repository that has none)
    for command in (["git", "init", "-q"], [dvc, "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "c"]):
        subprocess.run(command, cwd=root, env=env, check=True)
    failed = subprocess.run([dvc, "repro"], cwd=root, env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and not (root / "data" / "ag_news_test.csv").exists()
    errors = [line for line in failed.stderr.splitlines() if line.startswith("ckd download: error:")]
    assert len(errors) == 1 and MIRROR_ENV in errors[0] and "Traceback" not in failed.stderr, failed.stderr
    env[MIRROR_ENV] = str(mirror)
    done = subprocess.run([dvc, "repro", "download"], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (root / "data" / "ag_news_test.csv").read_bytes() == (mirror / "ag_news_test.csv").read_bytes()

    report = root / "examples" / "ag_news" / "standin_llm.json"
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.ag_news.llm_server", "--params", "params.yaml", "--report", str(report)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        seen = []  # it prints one line once it serves (after training on the pool); nothing more: it stopped
        while not (seen and seen[-1].startswith("stand-in LLM")) and (line := server.stdout.readline()):
            seen.append(line)
        assert seen and f"at {params['teacher']['url']};" in seen[-1], "".join(seen)
        done = subprocess.run([dvc, "repro"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    test, pool = TestSet.load(root / "data" / "test.npz"), Pool.load(root / "data" / "pool.npz")
    assert len(test.labels) == 20 and len(pool.ids) == 60 and pool.x.shape[1] == test.x.shape[1] == 384
    metrics = json.loads((root / "metrics" / "validate.json").read_text())
    assert metrics["test_size"] == 20 and 0.0 <= metrics["onnx_test_accuracy"] <= 1.0
    assert metrics["calls_spent_total"] <= 30 and metrics["teacher_outputs"] == 30
    assert json.loads((root / "metrics" / "query.json").read_text())["calls_this_run"] == 30
    assert json.loads((root / "models" / "serving" / "bundle.json").read_text())["class_names"] == list(LABEL_WORDS)
    assert json.loads(report.read_text())["standin_llm_test_accuracy"] > 0.5
