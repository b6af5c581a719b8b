"""`validate`: test accuracy by PyTorch and ONNX Runtime fp32 and int8, parity, latency, calls; the model
card; then the gates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ckd.config import Params, ValidateConfig
from ckd.data import TestSet
from ckd.latency import measure as measure_latency
from ckd.latency import onnx_runner, torch_runner
from ckd.model_card import build_card
from ckd.quantize import int8_metrics
from ckd.query import Queried
from ckd.students.checkpoint import StudentCheckpoint
from ckd.teachers.base import TeacherSettings
from ckd.teachers.onnx_file import OnnxFileTeacher, OnnxTeacherConfig
from ckd.teachers.standin import is_standin
from ckd.validate import accuracy, check_gates, onnx_logits, torch_logits


def teacher_is_standin(teacher: TeacherSettings) -> bool:
    return isinstance(teacher, OnnxTeacherConfig) and is_standin(teacher.model)


def validate(
    config: ValidateConfig,
    teacher: TeacherSettings,
    checkpoint: StudentCheckpoint,
    onnx_path: str | Path,
    int8_path: str | Path,
    test: TestSet,
    queried: Queried,
) -> dict:
    """Measure only; `gates` decides afterwards, so the metrics and the card are kept when a gate fails."""
    model = checkpoint.model()
    pt = torch_logits(model, test.x)
    ort_out = onnx_logits(onnx_path, test.x)
    metrics = {
        "test_accuracy": accuracy(pt, test.labels),
        "onnx_test_accuracy": accuracy(ort_out, test.labels),
        "onnx_max_abs_diff": float(np.abs(pt - ort_out).max()),
        **int8_metrics(ort_out, onnx_logits(int8_path, test.x), test.labels),
        **measure_latency(
            {
                "torch": lambda x: torch_runner(model, x),
                "": lambda x: onnx_runner(onnx_path, x),
                "int8": lambda x: onnx_runner(int8_path, x),
            },
            test.x,
            config.latency_runs,
        ),
        "calls_this_run": queried.calls_this_run,
        "calls_spent_total": queried.calls_spent_total,
        "teacher_outputs": queried.teacher_outputs,
        "teacher_lost": queried.teacher_lost,
        "teacher_unanswered": queried.unanswered,
        "budget": queried.budget,
        "method": checkpoint.method,
        "test_size": int(len(test.x)),
        "onnx_model": str(onnx_path),
        "teacher_eval_calls": 0,
    }
    if config.evaluate_teacher == "auto" and teacher_is_standin(teacher):
        # Only the free stand-in is evaluated; these calls are reported apart from the budget.
        teacher_scores = OnnxFileTeacher(teacher.model, teacher.output).predict(test.x)
        metrics["teacher_test_accuracy"] = accuracy(teacher_scores, test.labels)
        metrics["teacher_eval_calls"] = int(len(test.x))
    return metrics


def model_card(
    params: Params,
    metrics: dict,
    checkpoint: StudentCheckpoint,
    train_metrics: dict,
    onnx_path: str | Path,
    int8_path: str | Path,
) -> dict:
    """The card records every section of the validated params (defaults included)."""
    return build_card(
        metrics,
        vars(checkpoint),
        params.as_dict(),
        train_metrics,
        teacher_is_standin(params.teacher),
        {"onnx": str(onnx_path), "int8": str(int8_path)},
    )


def gates(config: ValidateConfig, metrics: dict, onnx_path: str | Path) -> None:
    check_gates(metrics, config.min_accuracy, config.max_abs_diff, str(onnx_path), config.max_int8_drop)
