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
from ckd.teachers.counting import computed_samples
from tests.helpers import PROJECT, copy_project, linear_onnx_teacher, with_changes
from tests.helpers.fake_oip import FakeOipServer
from tests.helpers.own_data import image_folder, table
from tests.helpers.stages import Outcome, run_stage_commands

DVC = str(Path(sys.executable).with_name("dvc"))
UNTIL = "query"  # the stage that pays: every case must fail at or before it
X = np.random.default_rng(0).integers(0, 17, size=(60, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("bad"), ("dvc.yaml", "stages", "ckd"))
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
        "teacher.budget: must be in 1..1297 (the pool size)",
    ),
    (
        "two-float-outputs",
        {"teacher.model": "two_outputs.onnx"},
        None,
        "query",
        "teacher.output: two_outputs.onnx has 2 float",
    ),
]


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
