"""The text pipeline's own stages (`examples/ag_news/dvc.yaml`): `embed` (the frozen encoder's outputs for
every text, computed once, free), `export_text` (one ONNX graph: token ids -> encoder -> head, with the
tokenizer beside it) and `validate_text` (accuracy on the raw test texts, ONNX vs PyTorch parity).
The stages between them (`sample`, `query`, `check`, `build`, `train`) are the pipeline's own, on the
cached embeddings: the head trains like any student, and KD, CKD and the controls apply unchanged."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ckd.config import DataConfig, ExportConfig, ValidateConfig
from ckd.data import read_arrays, write_arrays
from ckd.data.text import load_text_table
from ckd.errors import ConfigError
from ckd.pipeline import load_student, read_json, write_json
from ckd.validate import accuracy, check_gates


def embed_stage(data: DataConfig, out_path: str, progress: bool = True) -> dict:
    """Every text of `data.source` through the frozen encoder; written with its label and text."""
    from ckd.students.text_encoder import ENCODER_NAME, embed_texts, max_tokens

    if data.text is None:
        raise ConfigError("data.text", "must list the text columns for the embed stage")
    table = load_text_table(data.source, data.text, data.label)
    start = time.perf_counter()
    embeddings = embed_texts(table.texts, progress=progress)
    write_arrays(out_path, x=embeddings, y=table.y, class_names=np.asarray(table.class_names), text=table.texts)
    return {"texts": int(len(table.texts)), "width": int(embeddings.shape[1]), "encoder": ENCODER_NAME,
            "max_tokens": max_tokens(), "seconds": round(time.perf_counter() - start, 1)}


def export_text_stage(export: ExportConfig, checkpoint_path: str, query_metrics_path: str, out_dir: str) -> dict:
    from ckd.export_text import MODEL_FILE, export_text_bundle

    head, checkpoint = load_student(checkpoint_path)
    query_metrics = read_json(query_metrics_path)
    metadata = {"class_names": checkpoint["class_names"], "method": checkpoint["method"],
                "budget": query_metrics["budget"], "teacher_calls": query_metrics["teacher_calls"],
                "teacher_samples": checkpoint["teacher_samples"]}
    export_text_bundle(head, out_dir, export.opset, metadata)
    return {"opset": export.opset, "bytes": (Path(out_dir) / MODEL_FILE).stat().st_size}


def validate_text_stage(validate: ValidateConfig, checkpoint_path: str, bundle_dir: str, test_path: str,
                        query_metrics_path: str, out_metrics: str) -> dict:
    """Accuracy on the raw test texts through the bundle alone; parity against the training path (the
    PyTorch encoder's cached outputs through the PyTorch head). Metrics are written before the gates."""
    from ckd.export_text import TextBundle
    from ckd.validate import torch_logits

    test = read_arrays(test_path, required=("x", "labels", "text"))
    head, checkpoint = load_student(checkpoint_path)
    query_metrics = read_json(query_metrics_path)
    pytorch = torch_logits(head, test["x"])
    bundle = TextBundle(bundle_dir)
    onnx_out = bundle.logits(test["text"])
    metrics = {
        "test_accuracy": accuracy(pytorch, test["labels"]), "onnx_test_accuracy": accuracy(onnx_out, test["labels"]),
        "onnx_max_abs_diff": float(np.abs(pytorch - onnx_out).max()),
        "latency_ms_batch1": TextBundle(bundle_dir, threads=1).latency_ms_batch1(str(test["text"][0]),
                                                                                 validate.latency_runs),
        "teacher_calls": query_metrics["teacher_calls"], "teacher_outputs": query_metrics["teacher_outputs"],
        "teacher_lost": query_metrics["teacher_lost"], "teacher_unanswered": query_metrics["unanswered"],
        "budget": query_metrics["budget"], "method": checkpoint["method"], "test_size": int(len(test["x"])),
        "onnx_model": str(Path(bundle_dir) / bundle.description["model"]), "teacher_eval_calls": 0,
        **{key: query_metrics[key] for key in ("prompt_tokens", "completion_tokens", "estimated_cost")
           if key in query_metrics},
    }
    write_json(out_metrics, metrics)
    check_gates(metrics, validate.min_accuracy, validate.max_abs_diff, bundle_dir)
    return metrics
