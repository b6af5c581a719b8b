"""`validate_text`: the text model on the raw test texts through the bundle alone (tokenizer + ONNX graph);
parity against the training path (the PyTorch encoder's cached outputs through the PyTorch head)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ckd.config import ValidateConfig
from ckd.data import TestSet
from ckd.errors import CkdError
from ckd.query import Queried
from ckd.students.checkpoint import StudentCheckpoint
from ckd.validate import accuracy, check_gates, torch_logits


def validate_text(
    config: ValidateConfig, checkpoint: StudentCheckpoint, bundle_dir: str | Path, test: TestSet, queried: Queried
) -> dict:
    """Measure only; `gates` decides afterwards, so the metrics are kept when a gate fails."""
    from ckd.export_text import TextBundle

    if test.text is None:
        raise CkdError(f"{getattr(test, 'path', 'the test split')}: holds no texts (a text source's sample stage)")
    pytorch = torch_logits(checkpoint.model(), test.x)
    bundle = TextBundle(str(bundle_dir))
    onnx_out = bundle.logits([str(t) for t in test.text])
    metrics = {
        "test_accuracy": accuracy(pytorch, test.labels),
        "onnx_test_accuracy": accuracy(onnx_out, test.labels),
        "onnx_max_abs_diff": float(np.abs(pytorch - onnx_out).max()),
        "latency_ms_batch1": TextBundle(str(bundle_dir), threads=1).latency_ms_batch1(
            str(test.text[0]), config.latency_runs
        ),
        "calls_this_run": queried.calls_this_run,
        "calls_spent_total": queried.calls_spent_total,
        "teacher_outputs": queried.teacher_outputs,
        "teacher_lost": queried.teacher_lost,
        "teacher_unanswered": queried.unanswered,
        "budget": queried.budget,
        "method": checkpoint.method,
        "test_size": int(len(test.x)),
        "onnx_model": str(Path(bundle_dir) / bundle.description["model"]),
        "teacher_eval_calls": 0,
    }
    for key in ("prompt_tokens", "completion_tokens", "estimated_cost"):
        if getattr(queried, key) is not None:
            metrics[key] = getattr(queried, key)
    return metrics


def gates(config: ValidateConfig, metrics: dict, bundle_dir: str | Path) -> None:
    check_gates(metrics, config.min_accuracy, config.max_abs_diff, str(bundle_dir))
