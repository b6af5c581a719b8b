"""The model card: identities and hashes, the reproduce command, and the markdown written from the JSON."""

import hashlib
import json

import numpy as np

from ckd.model_card import build_card, data_identity, reproduce_command, teacher_identity, write_model_card

METRICS = {
    "test_accuracy": 0.93,
    "onnx_test_accuracy": 0.93,
    "int8_test_accuracy": 0.928,
    "test_size": 500,
    "onnx_max_abs_diff": 1e-6,
    "int8_argmax_agreement": 0.986,
    "int8_max_abs_diff": 0.98,
    "latency_ms_batch1": 0.006,
    "latency_ms_batch256_int8": 0.06,
    "calls_spent_total": 100,
    "calls_this_run": 100,
    "budget": 100,
    "teacher_outputs": 100,
    "teacher_lost": 0,
    "teacher_unanswered": 0,
    "teacher_eval_calls": 500,
}
CHECKPOINT = {
    "method": "ckd",
    "chosen": {"lr": 0.003},
    "arch": "mlp",
    "arch_args": {"hidden": [64]},
    "teacher_samples": 100,
}


def test_data_and_teacher_identity(tmp_path):
    source = tmp_path / "data.npz"
    np.savez(source, x=np.zeros((3, 2), np.float32), y=np.arange(3))
    assert data_identity(str(source))["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    embedded = data_identity("digits")
    assert embedded["hash_of"].startswith("arrays") and len(embedded["sha256"]) == 64
    http = teacher_identity(
        {"kind": "http", "url": "https://t.example", "model_name": "m", "token_env": "TEACHER_TOKEN"}, is_standin=False
    )
    assert http["url"] == "https://t.example" and "token_env" not in http
    onnx_file = tmp_path / "teacher.onnx"
    onnx_file.write_bytes(b"not really onnx")
    assert (
        teacher_identity({"kind": "onnx", "model": str(onnx_file)}, True)["sha256"]
        == hashlib.sha256(b"not really onnx").hexdigest()
    )


def test_reproduce_command_sets_every_parameter():
    command = reproduce_command(
        {
            "seed": 3,
            "teacher": {"budget": 100, "standin": {"epochs": 2}},
            "student": {"lr": [0.003, 0.001], "method": "ckd"},
        },
        "abc123",
    )
    assert command.startswith("git checkout abc123 && dvc exp run ")
    for setting in (
        "-S 'seed=3'",
        "-S 'teacher.budget=100'",
        "-S 'teacher.standin.epochs=2'",
        "-S 'student.lr=[0.003, 0.001]'",
        "-S 'student.method=\"ckd\"'",
    ):
        assert setting in command


def test_card_json_and_markdown(tmp_path):
    params = {
        "seed": 0,
        "data": {"source": "digits"},
        "teacher": {"kind": "onnx", "model": "missing.onnx"},
        "export": {"name": "digits_student"},
        "student": {"steps": 2000},
    }
    card = build_card(
        METRICS, CHECKPOINT, params, {"val_accuracy": 1.0, "best_step": 2000}, True, {"onnx": "models/student.onnx"}
    )
    write_model_card(card, tmp_path / "card.json", tmp_path / "card.md")
    stored = json.loads((tmp_path / "card.json").read_text())
    assert stored["name"] == "digits_student" and stored["accuracy"]["int8"] == 0.928
    assert (
        stored["accuracy"]["samples"] == 500
        and stored["accuracy"]["measure"] == "test accuracy"
        and stored["teacher_calls"]["calls_spent_total"] == 100
    )
    assert stored["latency_ms"] == {"batch1": 0.006, "batch256_int8": 0.06}
    markdown = (tmp_path / "card.md").read_text()
    assert "Teacher calls spent in the store in total: 100 of a budget of 100" in markdown
    assert "| ONNX Runtime int8 (QDQ) | 0.9280 |" in markdown and "## Accuracy on 500 held-out test samples" in markdown
    assert stored["reproduce"] in markdown and stored["date"] in markdown


def test_the_card_says_what_the_input_takes():
    """Issue 20: the input's expected scale (raw values; the scaling is inside the graph) is in the card."""
    from ckd.serving import input_scale

    scale = input_scale(np.array([[0.0, 16.0], [3.0, 5.0]]), "input")
    params = {"data": {"source": "digits"}, "teacher": {"kind": "onnx", "model": "missing.onnx"}}
    card = build_card(METRICS, CHECKPOINT, params, {}, True, {"onnx": "models/student.onnx"}, None, scale)
    assert card["input"] == scale
    from ckd.model_card import card_markdown

    markdown = card_markdown(card)
    assert "- Input `input`: raw, as the data source holds them" in markdown
    assert "the pool's values span 0 to 16" in markdown and "(x - mean) / std" in markdown
