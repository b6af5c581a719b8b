"""Print the short summary `make run` ends with."""

from __future__ import annotations

import sys
from typing import Any

from ckd.config import load_params
from ckd.stages import read_json


def summarise(metrics: dict[str, Any], method: str) -> str:
    """`metrics`: the validate stage's (numbers only); `method`: the student.method they were made with."""
    if "test_accuracy" in metrics:
        first = (
            f"student ({method}) test accuracy: PyTorch {metrics['test_accuracy']:.4f}, "
            f"ONNX Runtime {metrics['onnx_test_accuracy']:.4f} on {metrics['test_size']} held-out samples"
        )
    else:
        first = (
            f"student ({method}) agreement with the teacher (no labelled test set; set data.test_source for test "
            f"accuracy): PyTorch {metrics['teacher_agreement']:.4f}, ONNX Runtime "
            f"{metrics['onnx_teacher_agreement']:.4f} on {metrics['agreement_size']} queried samples held out of "
            "training"
        )
    lines = [
        first,
        f"teacher calls: {metrics['calls_this_run']} by the query run that made these answers; spent in the store in "
        f"total / budget: {metrics['calls_spent_total']} / {metrics['budget']} "
        f"(outputs stored {metrics['teacher_outputs']}, lost {metrics['teacher_lost']}, "
        f"selected samples without an answer {metrics.get('teacher_unanswered', 0)})",
        f"ONNX parity: max |logit difference| {metrics['onnx_max_abs_diff']:.2e}; "
        f"batch-1 latency {metrics['latency_ms_batch1']:.3f} ms (median)",
    ]
    int8_key = "int8_test_accuracy" if "test_accuracy" in metrics else "int8_teacher_agreement"
    if int8_key in metrics:
        batch256 = (  # an image or table student (a text model's latency is one text through its bundle)
            f"batch-256 latency: PyTorch {metrics['latency_ms_batch256_torch']:.3f} ms, ONNX Runtime "
            f"{metrics['latency_ms_batch256']:.3f} ms, int8 {metrics['latency_ms_batch256_int8']:.3f} ms; "
            if "latency_ms_batch256" in metrics
            else ""
        )
        lines.append(
            f"int8 {int8_key.removeprefix('int8_').replace('_', ' ')} {metrics[int8_key]:.4f}; {batch256}"
            "model card: models/model_card.md, serving bundle: models/serving/",
        )
    if "prompt_tokens" in metrics:
        lines.append(
            f"teacher tokens (the query stage's last run): {metrics['prompt_tokens']} input + "
            f"{metrics['completion_tokens']} output; estimated cost {metrics['estimated_cost']:.4f} "
            "(teacher.price_per_1k_*_tokens)"
        )
    if "teacher_test_accuracy" in metrics:
        lines.append(
            f"stand-in teacher test accuracy: {metrics['teacher_test_accuracy']:.4f} "
            f"({metrics['teacher_eval_calls']} evaluation calls, apart from the budget)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    # the method is a parameter, not a metric (metrics files hold numbers only)
    method = load_params(argv[1] if len(argv) > 1 else "params.yaml").get("student", {}).get("method", "?")
    print(summarise(read_json(argv[0] if argv else "metrics/validate.json"), method))


if __name__ == "__main__":
    main()
