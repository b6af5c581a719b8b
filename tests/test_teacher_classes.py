"""An unlabelled pool needs no `data.class_names` when the teacher declares its classes (ONNX metadata,
a v2 server's metadata parameters, an LLM's label words); one line, before any call, when neither does."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from ckd.config import section_from_dict
from ckd.data import Pool
from ckd.errors import TeacherError
from ckd.teachers.base import declared_class_names
from tests.helpers import linear_onnx_teacher
from tests.helpers.fake_oip import FakeOipServer

CLASSES = ["circle", "square", "star"]


def _with_metadata(path, class_names) -> None:
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "class_names", class_names
    onnx.save(model, str(path))


def _unlabelled_table(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "pool.csv"
    rows = ["a,b,c,d"] + [",".join(f"{v:.3f}" for v in rng.normal(size=4)) for _ in range(40)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _run_sample(tmp_path, teacher: dict, capsys):
    from ckd.stages.sample import main

    params = {
        "data": {"source": str(_unlabelled_table(tmp_path)), "label": None},
        "teacher": {"budget": 10, **teacher},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    d = tmp_path
    argv = ["--params", str(d / "params.yaml"), "--metrics", str(d / "sample.json")]
    argv += ["--pool", str(d / "pool.npz"), "--test", str(d / "test.npz"), "--selected", str(d / "selected.npz")]
    try:
        main(argv)
    except SystemExit as stop:
        return stop.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


def test_onnx_metadata_names_the_classes_of_an_unlabelled_table(tmp_path, capsys):
    teacher = linear_onnx_teacher(tmp_path / "t.onnx", features=4, classes=3)
    _with_metadata(teacher, '["circle", "square", "star"]')  # as ckd's own export writes it (JSON)
    code, err = _run_sample(tmp_path, {"kind": "onnx", "model": str(teacher)}, capsys)
    assert code == 0, err
    assert Pool.load(tmp_path / "pool.npz").class_names == tuple(CLASSES)


def test_neither_data_nor_teacher_naming_the_classes_is_one_line(tmp_path, capsys):
    teacher = linear_onnx_teacher(tmp_path / "t.onnx", features=4, classes=3)
    code, err = _run_sample(tmp_path, {"kind": "onnx", "model": str(teacher)}, capsys)
    lines = [line for line in err.splitlines() if line.startswith("ckd sample:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("ckd sample: error: data.class_names: ") and "declares none" in lines[0]
    assert "teacher.label_words" in lines[0] and not (tmp_path / "pool.npz").exists()


def test_declared_names_from_each_backend(tmp_path):
    teacher = linear_onnx_teacher(tmp_path / "t.onnx", features=4, classes=3)
    _with_metadata(teacher, "circle, square")  # comma-separated, but 2 names for 3 scores
    with pytest.raises(TeacherError, match="declares 2 class names for 3 scores"):
        declared_class_names(section_from_dict("teacher", {"kind": "onnx", "model": str(teacher)}))
    # an LLM's label words are its classes: known from the params alone (nothing listens at this URL)
    llm = {"kind": "openai", "url": "http://127.0.0.1:9/v1", "model_name": "m", "label_words": CLASSES}
    assert declared_class_names(section_from_dict("teacher", llm)) == tuple(CLASSES)
    metadata = {
        "name": "m",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 3]}],
        "parameters": {"class_names": CLASSES},
    }
    with FakeOipServer(metadata, classes=3) as server:
        http = {"kind": "http", "url": server.url, "model_name": "m", "ready_timeout_s": 5.0}
        assert declared_class_names(section_from_dict("teacher", http)) == tuple(CLASSES)
        del metadata["parameters"]
        metadata["outputs"][0]["parameters"] = {"class_names": ",".join(CLASSES)}  # the scores output's own
        assert declared_class_names(section_from_dict("teacher", http)) == tuple(CLASSES)
        assert server.computed == 0  # metadata only: nothing was paid
