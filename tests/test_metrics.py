"""Metrics files hold numbers only; the train stage's DVCLive curves are what dvc.yaml's plots draw;
the test-accuracy curve is drawn without touching training or selection."""

import json

import numpy as np
import torch
import yaml

from ckd.metrics import CURVE_METRICS, accuracy_probe, numeric_metrics, write_metrics, write_training_log
from ckd.train import train_student
from tests.conftest import PROJECT
from tests.test_train import CONFIG, toy_arrays


def test_numeric_metrics_keep_numbers_only():
    record = {
        "budget": 100,
        "store": "teacher_outputs/x",
        "success": True,
        "shape": [1, 8, 8],
        "chosen": {"lr": 0.003, "anchor": "kd"},
        "notes": {"text": "x"},
        "acc": np.float32(0.5),
        "count": np.int64(3),
    }
    assert numeric_metrics(record) == {"budget": 100, "success": 1, "chosen": {"lr": 0.003}, "acc": 0.5, "count": 3}
    assert isinstance(numeric_metrics(record)["count"], int)


def test_write_metrics_writes_json_numbers(tmp_path):
    write_metrics(tmp_path / "m" / "x.json", {"a": 1, "b": "text"})
    assert json.loads((tmp_path / "m" / "x.json").read_text()) == {"a": 1}


def test_every_stage_declares_at_most_one_metrics_file_and_the_plots_read_the_train_log():
    dvc = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        assert len(stage.get("metrics", [])) <= 1, name
    train = dvc["stages"]["train"]
    log_dir = train["cmd"].split("--log-dir ")[1].split()[0]
    # the train log is a plain output (dvc exp show compares only metrics/decision.json) or a metrics file
    declared = [next(iter(o)) if isinstance(o, dict) else o for o in train.get("metrics", []) + train["outs"]]
    assert f"{log_dir}/metrics.json" in declared and f"{log_dir}/plots" in declared
    sources = {path for plot in dvc["plots"] for spec in plot.values() for path in spec["y"]}
    expected = {f"{log_dir}/plots/metrics/{name}.tsv" for name in CURVE_METRICS.values()}
    assert sources == expected


def test_training_log_has_the_curves_and_a_numeric_summary(tmp_path):
    curve = [
        {"step": 50, "train_loss": 1.5, "val_accuracy": 0.5, "val_xent": 1.0, "test_accuracy": 0.4},
        {"step": 100, "train_loss": 0.5, "val_accuracy": 0.75, "val_xent": 0.6, "test_accuracy": 0.7},
    ]
    write_training_log(tmp_path / "log", curve, {"val_accuracy": 0.75, "chosen": {"lr": 0.01}, "method": "ckd"})
    assert json.loads((tmp_path / "log" / "metrics.json").read_text()) == {"val_accuracy": 0.75, "chosen": {"lr": 0.01}}
    rows = (tmp_path / "log" / "plots" / "metrics" / "test" / "accuracy.tsv").read_text().split("\n")
    assert rows[0].split("\t") == ["step", "accuracy"] and rows[2].split("\t") == ["100", "0.7"]
    assert (tmp_path / "log" / "plots" / "metrics" / "val" / "accuracy.tsv").is_file()


def test_test_accuracy_curve_does_not_change_training():
    arrays = toy_arrays()
    config = CONFIG.model_copy(update={"method": "ckd", "lr": (0.01, 0.003)})
    rng = np.random.default_rng(1)
    test_x = rng.normal(size=(40, 6)).astype(np.float32)
    test_y = rng.integers(0, 3, size=40)
    plain = train_student(arrays, config, torch.device("cpu"), progress=False)
    probed = train_student(
        arrays, config, torch.device("cpu"), progress=False, on_eval=accuracy_probe(test_x, test_y, "test_accuracy")
    )
    assert all("test_accuracy" in point for point in probed.curve)
    assert probed.chosen == plain.chosen and probed.best_step == plain.best_step
    for key, value in plain.model.state_dict().items():
        # rounding-level only: other allocations may align CPU kernels differently (see test_train's pool test)
        assert torch.allclose(value, probed.model.state_dict()[key], atol=1e-5), key
    final = accuracy_probe(test_x, test_y, "acc")(0, probed.model)["acc"]
    assert final == float((probed.model(torch.as_tensor(test_x)).argmax(1).numpy() == test_y).mean())
