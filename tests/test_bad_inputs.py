"""Every bad input gets one line naming the parameter or file and what is allowed, before any teacher call.

Each case changes the committed params.yaml (and may bring a file), then runs the pipeline's stage commands
as dvc.yaml spells them, in order, in a copy of the project, until one fails (in this process: the same
entry points DVC starts, without an interpreter's start-up per stage). It asserts: exit status 2, the
expected stage, exactly one `ckd <stage>: error:` line holding the expected words, no traceback, and no
teacher call (the counting teacher's durable count, or the fake server's `/infer` count, is zero). Two
cases go through `dvc repro` itself. README "Bad inputs" lists these cases and their lines.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ckd.data import write_arrays
from tests.helpers import PROJECT, copy_project, linear_onnx_teacher, with_changes
from tests.helpers.counting import computed_samples
from tests.helpers.fake_oip import FakeOipServer
from tests.helpers.own_data import image_folder, table
from tests.helpers.stages import Outcome, run_stage_commands

DVC = str(Path(sys.executable).with_name("dvc"))
UNTIL = "query"  # the stage that pays: every case must fail at or before it
X = np.random.default_rng(0).integers(0, 17, size=(60, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("bad"), ("dvc.yaml", "ckd"))
    linear_onnx_teacher(root / "teacher.onnx", input_shape=[1, 8, 8])
    linear_onnx_teacher(root / "two_outputs.onnx", input_shape=[1, 8, 8], two_outputs=True)
    return root


def base_params(root: Path) -> dict:
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["teacher"].update(
        kind="counting", model="teacher.onnx", count_file=str(root / "count.log"), store=str(root / "store"), budget=20
    )
    return params


def npz(name, **arrays):
    def make(root):
        write_arrays(root / name, **arrays)

    return make


def images_of_two_sizes(root):
    from PIL import Image

    folder = image_folder(root / "images", per_class=3)
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(folder / "dark" / "wide.png")


def loose_image(root):
    from PIL import Image

    folder = image_folder(root / "images", per_class=3)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "loose.png")


def class_teacher(root):
    (root / "user_cls.py").write_text("class Teacher:\n    def __init__(self):\n        pass\n")


def text_table(root):
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    pa_csv.write_csv(
        pa.table({"f0": np.arange(30.0), "comment": ["ok"] * 30, "label": np.arange(30) % 2}), root / "t.csv"
    )


# (id, change: dotted key -> value (None deletes; "" key replaces the whole file), make files, stage, words)
CASES = [
    ("teacher-a-list", {"teacher": [1, 2]}, None, "download", "teacher: must be a mapping"),
    ("data-a-number", {"data": 5}, None, "download", "data: must be a mapping"),
    ("misspelt-section", {"studnet": {"method": "kd"}}, None, "download", "studnet: unknown section; allowed: "),
    (
        "teacher-options",
        {"teacher.options": {"a": 1}},
        None,
        "download",
        "teacher.options: unknown parameter for kind counting",
    ),
    (
        "url-without-host",
        {"teacher.kind": "http", "teacher.url": "http://", "teacher.model_name": "m", "teacher.count_file": None},
        None,
        "download",
        "teacher.url: must name a host",
    ),
    (
        "standin-channels",
        {"teacher.standin.channels": [0, 5]},
        None,
        "download",
        "teacher.standin.channels: must be two integers in [1, 1024]",
    ),
    (
        "batch-10M",
        {"student.batch_size": 10_000_000},
        None,
        "download",
        "student.batch_size: must be an integer >= 1 and <= 4096",
    ),
    (
        "groups-1e8",
        {"comparative.group_size": 2, "comparative.max_groups": 100_000_000},
        None,
        "download",
        "comparative.max_groups: must be an integer >= 1 and <= 1000000",
    ),
    (
        "one-class-name",
        {"data.class_names": ["cat"]},
        None,
        "download",
        "data.class_names: must list 2 to 10000 classes",
    ),
    ("no-such-source", {"data.source": "digts"}, None, "download", "data.source: must be digits, a folder of images"),
    (
        "bad-callable",
        {"teacher.kind": "python", "teacher.callable": "my teacher", "teacher.count_file": None},
        None,
        "download",
        "teacher.callable: must be package.module:function",
    ),
    (
        "teacher-file-missing",
        {"teacher.model": "nowhere.onnx"},
        None,
        "teacher",
        "nowhere.onnx: the teacher's file is not found",
    ),
    (
        "callable-module-missing",
        {"teacher.kind": "python", "teacher.callable": "no_such_module:predict", "teacher.count_file": None},
        None,
        "teacher",
        "teacher.callable: no module 'no_such_module' on the path",
    ),
    (
        "one-class-data",
        {"data.source": "d.npz"},
        npz("d.npz", x=X, y=np.full(60, 4)),
        "sample",
        "every sample has the same label (4)",
    ),
    (
        "label-1e9",
        {"data.source": "d.npz"},
        npz("d.npz", x=X, y=np.r_[np.arange(59) % 10, 10**9]),
        "sample",
        "label 1000000000 implies 1000000001 classes",
    ),
    (
        "label-beyond-class-names",
        {"data.source": "d.npz", "data.class_names": ["a", "b", "c"]},
        npz("d.npz", x=X, y=np.arange(60) % 10),
        "sample",
        "label 9 is beyond the 3 class names",
    ),
    (
        "5-D-inputs",
        {"data.source": "d.npz"},
        npz("d.npz", x=np.zeros((60, 1, 2, 2, 16), np.float32), y=np.arange(60) % 10),
        "sample",
        "inputs must be [samples, features], [samples, H, W] or [samples, C, H, W], got 5-D",
    ),
    ("text-column", {"data.source": "t.csv"}, text_table, "sample", "column(s) comment are not numeric"),
    (
        "no-label-column",
        {"data.source": "t.csv", "data.label": "species"},
        lambda r: table(r / "t.csv"),
        "sample",
        "no label column 'species' (data.label)",
    ),
    (
        "features-name-the-label",
        {"data.source": "t.csv", "data.features": ["f0", "label"]},
        lambda r: table(r / "t.csv"),
        "sample",
        "data.features names the label column 'label' (data.label)",
    ),
    (
        "loose-images",
        {"data.source": "images"},
        loose_image,
        "sample",
        "1 image(s) (loose.png, ...) lie beside the class folders",
    ),
    (
        "callable-is-a-class",
        {"teacher.kind": "python", "teacher.callable": "user_cls:Teacher", "teacher.count_file": None},
        class_teacher,
        "query",
        "teacher.callable: user_cls:Teacher is a class; name a function",
    ),
    ("image-sizes", {"data.source": "images"}, images_of_two_sizes, "sample", "wide.png: size 7x5 differs"),
    (
        "test-source-other-shape",
        {"data.source": "d.npz", "data.test_source": "t.npz"},
        lambda r: (npz("d.npz", x=X, y=np.arange(60) % 10)(r), npz("t.npz", x=X[:, :4], y=np.arange(60) % 10)(r)),
        "sample",
        "data.test_source must be the same kind of data",
    ),
    (
        "budget-over-pool",
        {"teacher.budget": 5000},
        None,
        "sample",
        "teacher.budget: must be in 1..1438 (the pool size)",
    ),
    (
        "two-float-outputs",
        {"teacher.model": "two_outputs.onnx"},
        None,
        "query",
        "teacher.output: two_outputs.onnx has 2 float",
    ),
]


# issue 21: every setting a later stage checks is checked before `query` pays; files that used to end in a
# traceback (duplicate columns, decompression bombs) or be accepted silently get one line.
def wide_table(root):
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    columns = {f"f{j}": X.reshape(60, -1)[:, j] for j in range(64)}
    pa_csv.write_csv(pa.table({**columns, "label": np.arange(60) % 10}), root / "t.csv")


def table_with_a_column_twice(root):
    (root / "t.csv").write_text("f0,f1,f0,label\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(30)))


def png_header_only(width: int, height: int):
    """A valid PNG header declaring width x height over a few bytes of data (no decoder should ever see it)."""

    def make(root):
        import struct
        import zlib

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        folder = image_folder(root / "images", per_class=3)
        header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        body = chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
        (folder / "dark" / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + body)

    return make


def cuda_absent() -> bool:
    import torch

    return not torch.cuda.is_available()


CASES_21 = [
    pytest.param(
        {"student.device": "cuda"},
        None,
        "download",
        "student.device: is 'cuda' but no usable CUDA device is present",
        id="cuda-on-a-cpu-machine",
        marks=pytest.mark.skipif(not cuda_absent(), reason="this machine has CUDA"),
    ),
    pytest.param(
        {"comparative.group_size": 32, "teacher.budget": 10},
        None,
        "download",
        "comparative.group_size: 32 needs at least 64 queried samples; teacher.budget is 10",
        id="group-over-budget",
    ),
    pytest.param(
        {"teacher.budget": 2, "student.val_fraction": 0.2},
        None,
        "download",
        "student.val_fraction: 0.2 leaves fewer than 2 of 2 queried samples for training",
        id="val-split-over-budget",
    ),
    pytest.param(
        {"student.arch_args": {"hidden": [0]}},
        None,
        "sample",
        "student.arch_args.hidden: must be a list of integers >= 1",
        id="hidden-0",
    ),
    pytest.param(
        {"student.method": "kd", "student.method_args": {"temperature": -1}},
        None,
        "sample",
        "student.method_args.temperature: must be a number >= 0",
        id="temperature-negative",
    ),
    pytest.param(
        {"student.method": "kd", "student.method_args": {"temperature": [2, -1]}},
        None,
        "sample",
        "student.method_args.temperature: must be a number >= 0, got -1",
        id="temperature-grid-negative",
    ),
    pytest.param(
        {"data.source": "t.csv", "data.test_size": 20, "student.arch": "cnn", "student.arch_args": {}},
        wide_table,
        "sample",
        "student.arch: 'cnn' needs image inputs [H, W] or [C, H, W], got (64,)",
        id="cnn-on-a-table",
    ),
    pytest.param(
        {"student.unlabelled_targets": "neighbours"},
        None,
        "sample",
        "student.unlabelled_targets: neighbours compares inputs as vectors (table rows, text embeddings), "
        "not inputs shaped (8, 8)",
        id="neighbours-on-images",
    ),
    pytest.param(
        {"data.source": "t.csv"},
        table_with_a_column_twice,
        "sample",
        "t.csv: column name(s) 'f0' appear more than once",
        id="column-twice",
    ),
    pytest.param(
        {"data.source": "images"},
        png_header_only(20000, 20000),
        "sample",
        "bomb.png: an image of 400000000 pixels is over the limit of 67108864 pixels",
        id="png-20000x20000",
    ),
    pytest.param(
        {"data.source": "images", "data.image_size": [8, 8]},
        png_header_only(10000, 10000),
        "sample",
        "bomb.png: an image of 10000x10000 pixels is over the limit of 67108864 pixels",
        id="png-10000x10000-resized",
    ),
]


@pytest.mark.parametrize("change,make,stage,words", CASES_21)
def test_later_stage_checks_run_before_any_teacher_call(project, change, make, stage, words, capsys, monkeypatch):
    test_bad_input_is_one_line_before_any_teacher_call(project, "", change, make, stage, words, capsys, monkeypatch)


@pytest.mark.parametrize(
    "edit,words",
    [
        (
            lambda text: text.replace("budget: 20", "budget: 20\n  budget: 30"),
            "params.yaml: teacher.budget: given twice",
        ),
        (lambda text: text.replace("seed: 0\n", "seed: 0\nseed: 1\n", 1), "params.yaml: seed: given twice"),
        (
            lambda text: text.replace("budget: 20", "budget: 20 # caf\udce9"),
            "params.yaml: not UTF-8 (byte 0xe9 on line",
        ),
    ],
    ids=["duplicate-key", "duplicate-top-level-key", "non-utf8-byte"],
)
def test_params_file_read_as_dvc_reads_it(project, edit, words, capsys, monkeypatch):
    reset(project)
    text = edit(yaml.safe_dump(base_params(project)))
    (project / "params.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    failed, run = run_stages(project, capsys, monkeypatch)
    assert failed == "download", (failed, run.stderr[-2000:] if run else None)
    assert_one_line(run, "download", words)
    assert computed_samples(project / "count.log") == 0


BAD_TEACHERS = """
import os, sys, time

def sleeps(x):
    time.sleep(3600)

def exits(x):
    sys.exit(3)

def interrupted(x):
    raise KeyboardInterrupt

def crashes(x):
    os.abort()
"""


@pytest.mark.parametrize(
    "function,words",
    [
        ("sleeps", "user_bad:sleeps gave no answer within teacher.timeout_s=2 s while answering a batch of 10; its"),
        ("exits", "user_bad:exits raised SystemExit: 3"),
        ("interrupted", "user_bad:interrupted raised KeyboardInterrupt"),
        ("crashes", "user_bad:crashes's process ended (exit status -6)"),
    ],
)
def test_python_teacher_failing_mid_run_is_a_lost_batch_and_one_line(project, function, words, capsys, monkeypatch):
    from ckd.store import open_store

    reset(project)
    (project / "user_bad.py").write_text(BAD_TEACHERS)
    params = base_params(project)
    del params["teacher"]["count_file"]
    params["teacher"].update(kind="python", callable=f"user_bad:{function}", timeout_s=2, batch_size=10)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    failed, run = run_stages(project, capsys, monkeypatch)
    assert failed == "query", (failed, run.stderr[-2000:] if run else None)
    assert_one_line(run, "query", "teacher call for batch 1 failed (PythonTeacherFailed: ")
    assert words in run.stderr and "its 10 samples stay counted as lost" in run.stderr, run.stderr
    store = open_store(str(project / "store"))
    try:
        (summary,) = store.summaries()
        assert (summary.spent, summary.lost, summary.answered) == (10, 10, 0)
    finally:
        store.close()


OIP_METADATA = {
    "name": "m",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
    "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 10]}],
}


PEAK_LAUNCHER = (
    "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
    "print('peak_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)"
)


@pytest.mark.parametrize(
    "pause_s,cap_mb,words",
    [
        (0.0, 64, "reading stopped"),  # as fast as it goes: the byte cap (or the deadline) stops it
        (0.05, 4096, "a body still arriving after teacher.timeout_s=2 s (reading stopped)"),  # a drip: the deadline
    ],
    ids=["fast", "drip"],
)
def test_endless_http_body_is_bounded_in_memory_and_time(project, pause_s, cap_mb, words, capsys, monkeypatch):
    """A 200 whose body never ends: `query` (its own process, RSS measured by the kernel) stops reading at
    teacher.max_response_mb or teacher.timeout_s, keeps the paid batch apart and ends in one line."""
    import os
    import shlex
    import threading

    from ckd.store import open_store

    reset(project)
    with FakeOipServer(OIP_METADATA, endless=pause_s) as server:
        params = base_params(project)
        del params["teacher"]["count_file"]
        params["teacher"].update(
            kind="http", url=server.url, model_name="m", timeout_s=2, max_response_mb=cap_mb, batch_size=10
        )
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        assert run_stage_commands(project, capsys, monkeypatch, until="sample") is None
        command = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["query"]["cmd"]
        # ru_maxrss of a process forked from this (large) pytest process would count pytest's own pages: a
        # small launcher runs query and reports its child's peak (RUSAGE_CHILDREN), i.e. query's own
        query = subprocess.Popen(
            [sys.executable, "-c", PEAK_LAUNCHER, sys.executable, *shlex.split(command)[1:]],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(project)},
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        stop = threading.Timer(300, lambda: os.killpg(query.pid, 9))  # unbounded reading: fail, do not hang
        stop.start()
        stderr = query.stderr.read()
        query.wait()
        stop.cancel()
    stderr, _, peak = stderr.rstrip("\n").rpartition("\npeak_kib ")
    peak_kib = int(peak)
    print(f"query peak RSS {peak_kib >> 10} MB, {server.sent_bytes >> 20} MB sent; {stderr.strip()[-300:]}")
    assert peak_kib < 500 * 1024, f"query peaked at {peak_kib >> 10} MB"  # KiB on Linux
    assert_one_line(Outcome("query", query.returncode, stderr), "query", "teacher answered batch 1 unusably: HTTP 200")
    assert words in stderr, stderr
    store = open_store(str(project / "store"))
    try:
        (summary,) = store.summaries()
        assert (summary.spent, summary.rejected, summary.answered) == (10, 10, 0)  # paid, kept apart
    finally:
        store.close()


THREE_TIMES_PROBABILITIES = """
import numpy as np

def predict(x):
    flat = x.reshape(len(x), -1)
    logits = flat[:, :10] - flat[:, :10].max(axis=1, keepdims=True)
    return 3 * np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
"""


@pytest.mark.parametrize(
    "change,words",
    [
        (
            {"teacher.scores": "probabilities"},
            "rows have scores outside [0, 1] (from -",
        ),
        (
            {
                "teacher.kind": "python",
                "teacher.callable": "user_sum3:predict",
                "teacher.count_file": None,
                "teacher.model": None,
                "teacher.scores": "probabilities",
            },
            "20 of 20 rows do not sum to 1 (observed sums 3 to 3)",
        ),
    ],
    ids=["logits-as-probabilities", "rows-sum-to-3"],
)
def test_check_failure_is_one_line_naming_the_likely_cause(project, change, words, capsys, monkeypatch):
    reset(project)
    (project / "user_sum3.py").write_text(THREE_TIMES_PROBABILITIES)
    (project / "params.yaml").write_text(yaml.safe_dump(with_changes(base_params(project), change)))
    run = run_stage_commands(project, capsys, monkeypatch, until="check")
    assert run is not None and run.stage == "check", run
    assert_one_line(run, "check", words)
    assert "; Great Expectations Data Docs: reports/data_docs/index.html" in run.stderr


def test_student_refused_for_the_data_through_dvc_repro(project):
    """The same check through `dvc repro` itself: `sample` refuses, `query` never runs."""
    test_bad_input_through_dvc_repro(
        project,
        {"data.source": "t.csv", "data.test_size": 20, "student.arch": "cnn", "student.arch_args": {}},
        wide_table,
        "ckd sample: error: student.arch: 'cnn' needs image inputs",
    )


# end of issue 21's cases


def run_stages(root: Path, capsys, monkeypatch) -> tuple[str | None, Outcome | None]:
    outcome = run_stage_commands(root, capsys, monkeypatch, until=UNTIL)
    return (outcome.stage, outcome) if outcome is not None else (None, None)


def reset(root: Path) -> None:
    for leftover in (
        "count.log",
        "store",
        "data",
        "models",
        "metrics",
        "images",
        "d.npz",
        "t.npz",
        "t.csv",
        "user_cls.py",
    ):
        path = root / leftover
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def assert_one_line(run: Outcome, stage: str, words: str) -> None:
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"ckd {stage}: error: "), run.stderr[-2000:]
    assert words in errors[0], errors[0]


@pytest.mark.parametrize("name,change,make,stage,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_before_any_teacher_call(project, name, change, make, stage, words, capsys, monkeypatch):
    reset(project)
    if make is not None:
        make(project)
    (project / "params.yaml").write_text(yaml.safe_dump(with_changes(base_params(project), change)))
    failed, run = run_stages(project, capsys, monkeypatch)
    assert failed == stage, (failed, run.stderr[-2000:] if run else None)
    assert_one_line(run, stage, words)
    assert computed_samples(project / "count.log") == 0


@pytest.mark.parametrize(
    "metadata,token,words",
    [
        ({"name": "m", "inputs": [{"shape": [-1, 64]}]}, None, "the model's metadata is malformed (KeyError"),
        ([1, 2, 3], None, "the model's metadata is malformed (AttributeError"),
        (
            {
                "name": "m",
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
                "outputs": [
                    {"name": "a", "datatype": "FP32", "shape": [-1, 10]},
                    {"name": "b", "datatype": "FP32", "shape": [-1, 10]},
                ],
            },
            None,
            "teacher.output: m has 2 float [batch, classes] outputs (a, b)",
        ),
        (
            {
                "name": "m",
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
                "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 10]}],
            },
            "t\u00f6ken-secret",
            "teacher.token_env: the token in CKD_TEST_TOKEN has a non-ASCII or control character",
        ),
    ],
    ids=["metadata-no-input-name", "metadata-a-list", "two-float-outputs", "non-ascii-token"],
)
def test_bad_server_is_one_line_before_any_call(project, metadata, token, words, capsys, monkeypatch):
    reset(project)
    with FakeOipServer(metadata) as server:
        params = base_params(project)
        params["teacher"] = {k: v for k, v in params["teacher"].items() if k != "count_file"}
        params["teacher"].update(kind="http", url=server.url, model_name="m", ready_timeout_s=5.0)
        if token is not None:
            params["teacher"]["token_env"] = "CKD_TEST_TOKEN"
            monkeypatch.setenv("CKD_TEST_TOKEN", token)
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        failed, run = run_stages(project, capsys, monkeypatch)
        assert failed == "query", (failed, run.stderr[-2000:] if run else None)
        assert_one_line(run, "query", words)
        assert server.computed == 0
        if token is not None:
            assert token not in run.stderr


@pytest.mark.parametrize(
    "change,make,words",
    [
        ({"studnet": {"method": "kd"}}, None, "ckd download: error: studnet: unknown section"),
        (
            {"data.source": "d.npz"},
            npz("d.npz", x=X, y=np.full(60, 4)),
            "ckd sample: error: d.npz: every sample has the same label",
        ),
    ],
    ids=["misspelt-section", "one-class-data"],
)
def test_bad_input_through_dvc_repro(project, change, make, words):
    reset(project)
    shutil.rmtree(project / ".dvc", ignore_errors=True)
    subprocess.run([DVC, "init", "--no-scm", "-q", "-f"], cwd=project, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=project, check=True)
    if make is not None:
        make(project)
    (project / "params.yaml").write_text(yaml.safe_dump(with_changes(base_params(project), change)))
    run = subprocess.run([DVC, "repro"], cwd=project, capture_output=True, text=True, timeout=900)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("ckd ")]
    assert len(errors) == 1 and errors[0].startswith(words), run.stderr[-2000:]
    assert computed_samples(project / "count.log") == 0 and not (project / "store").exists()


# issue 18: bad teachers and stores refused before they cost, each in one line
def _zipmap_teacher(root):
    from tests.teachers.test_onnx_identity import zipmap_classifier

    zipmap_classifier(root / "sklearn.onnx")


def _empty_store_file(root):
    (root / "store.sqlite").write_bytes(b"")


ISSUE_18_CASES = [
    (
        "url-ipv4-leading-zero",
        {"teacher.kind": "http", "teacher.url": "http://127.0.0.01:8000", "teacher.model_name": "m"},
        None,
        "download",
        "127.0.0.01 is not an IPv4 address (four numbers 0-255, no leading zeros)",
    ),
    (
        "onnx-zipmap-output",
        {"teacher.kind": "onnx", "teacher.model": "sklearn.onnx", "teacher.count_file": None},
        _zipmap_teacher,
        "query",
        "no float output shaped [batch, classes]; a classifier converted by skl2onnx answers maps (ZipMap) by "
        "default: convert it again with options={'zipmap': False}",
    ),
    (
        "onnx-zipmap-output-named",
        {
            "teacher.kind": "onnx",
            "teacher.model": "sklearn.onnx",
            "teacher.output": "output_probability",
            "teacher.count_file": None,
        },
        _zipmap_teacher,
        "query",
        "teacher.output: 'output_probability' of sklearn.onnx is seq(map(int64,tensor(float))), not a float tensor",
    ),
    (
        "store-file-of-0-bytes",
        {"teacher.store": "store.sqlite"},
        _empty_store_file,
        "query",
        "store.sqlite: it is no ckd store (the file has 0 bytes); only an absent file is a fresh start",
    ),
    (
        "selection-size-beyond-the-pool",
        {"data.selection_size": 5000},
        None,
        "sample",
        "data.selection_size: must be in 1..1438 (the pool size), got 5000",
    ),
    (
        "store-url-with-password",
        {"teacher.store": "postgresql://postgres:hunter2@127.0.0.1:5432/x"},
        None,
        "query",
        "teacher.store: holds a password; remove it and set PGPASSWORD",
    ),
]


@pytest.mark.parametrize("name,change,make,stage,words", ISSUE_18_CASES, ids=[c[0] for c in ISSUE_18_CASES])
def test_issue_18_bad_teacher_or_store_is_one_line_before_any_call(
    project, name, change, make, stage, words, capsys, monkeypatch
):
    test_bad_input_is_one_line_before_any_teacher_call(project, name, change, make, stage, words, capsys, monkeypatch)
    assert "hunter2" not in capsys.readouterr().err


def test_issue_18_a_server_answering_maps_is_refused_before_any_call(project, capsys, monkeypatch):
    metadata = {
        "name": "m",
        "inputs": [{"name": "float_input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
        "outputs": [
            {"name": "output_label", "datatype": "INT64", "shape": [-1]},
            {"name": "output_probability", "datatype": "BYTES", "shape": [-1]},
        ],
    }
    reset(project)
    with FakeOipServer(metadata) as server:
        params = base_params(project)
        params["teacher"] = {k: v for k, v in params["teacher"].items() if k != "count_file"}
        params["teacher"].update(
            kind="http", url=server.url, model_name="m", output="output_probability", ready_timeout_s=5.0
        )
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        failed, run = run_stages(project, capsys, monkeypatch)
        assert failed == "query", (failed, run.stderr[-2000:] if run else None)
        assert_one_line(run, "query", "teacher.output: 'output_probability' of m is declared BYTES")
        assert "options={'zipmap': False}" in run.stderr and server.computed == 0
