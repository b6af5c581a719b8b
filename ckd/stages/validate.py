"""`validate`: test accuracy by PyTorch and ONNX Runtime fp32 and int8, parity, latency, calls; the model
card; then the gates."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ckd.config import Params, ValidateConfig
from ckd.data import Pool, TestSet
from ckd.errors import CkdError
from ckd.export import read_metadata
from ckd.latency import measure as measure_latency
from ckd.latency import onnx_runner, torch_runner
from ckd.metrics import write_metrics
from ckd.model_card import build_card, write_model_card
from ckd.quantize import int8_metrics
from ckd.query import Queried, read_accounting
from ckd.stages import read_json
from ckd.stages._entry import parser, run
from ckd.students.checkpoint import StudentCheckpoint
from ckd.teachers.base import TeacherSettings
from ckd.teachers.onnx_file import OnnxFileTeacher, OnnxTeacherConfig
from ckd.teachers.standin import is_standin
from ckd.text_bundle import TextBundle
from ckd.validate import SCORE_KEYS, accuracy, check_gates, onnx_logits, score_keys, torch_logits


def teacher_is_standin(teacher: TeacherSettings) -> bool:
    return isinstance(teacher, OnnxTeacherConfig) and is_standin(teacher.model)


def evaluation_set(
    test: TestSet, checkpoint: StudentCheckpoint, queried: Queried, pool: Pool | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(inputs, labels, what): the labelled test split, or, without one, the queried samples the train stage
    held out, labelled by the teacher's argmax (answers already paid for: no extra call)."""
    if len(test.x):
        return test.x, test.labels, "test"
    if not checkpoint.held_out_ids or pool is None:
        raise CkdError(
            "data.test_source: the source has no labels and the student kept no queried sample out of training; "
            "give a labelled test set (data.test_source)"
        )
    ids = np.asarray(checkpoint.held_out_ids, dtype=np.int64)
    position = {int(i): n for n, i in enumerate(queried.ids)}
    rows = np.asarray([position[int(i)] for i in ids])
    return pool.x[pool.rows(ids, "the held-out samples")], queried.scores[rows].argmax(1), "agreement"


def validate(
    config: ValidateConfig,
    teacher: TeacherSettings,
    checkpoint: StudentCheckpoint,
    onnx_path: str | Path,
    int8_path: str | Path,
    test: TestSet,
    queried: Queried,
    accounting: Mapping[str, Any],
    pool: Pool | None = None,
    text_bundle: str | Path | None = None,
) -> dict[str, Any]:
    """Measure only; `gates` decides afterwards, so the metrics and the card are kept when a gate fails.
    `text_bundle` (a text source): the ONNX figures come from the raw test texts through the bundle alone
    (tokenizer + graph), PyTorch's from the encoder's cached outputs through the head (the training path)."""
    model = checkpoint.model()
    if text_bundle is None:
        x, labels, what = evaluation_set(test, checkpoint, queried, pool)
        pt, ort_out, int8_out = torch_logits(model, x), onnx_logits(onnx_path, x), onnx_logits(int8_path, x)
        runners = {
            "torch": lambda x: torch_runner(model, x),
            "": lambda x: onnx_runner(onnx_path, x),
            "int8": lambda x: onnx_runner(int8_path, x),
        }
        latency = measure_latency(runners, x, config.latency_runs)
    else:
        if test.text is None:
            raise CkdError(f"{getattr(test, 'path', 'the test split')}: holds no texts (a text source's sample stage)")
        x, labels, what, texts = test.x, test.labels, "test", [str(t) for t in test.text]
        pt = torch_logits(model, x)
        ort_out = TextBundle(text_bundle).logits(texts)
        int8_out = TextBundle(text_bundle, model=int8_path).logits(texts)
        one_thread = TextBundle(text_bundle, threads=1)
        latency = {"latency_ms_batch1": one_thread.latency_ms_batch1(texts[0], config.latency_runs)}
    torch_key, onnx_key, int8_key = SCORE_KEYS[what]
    int8 = int8_metrics(ort_out, int8_out, labels)
    metrics = {
        torch_key: accuracy(pt, labels),
        onnx_key: accuracy(ort_out, labels),
        "onnx_max_abs_diff": float(np.abs(pt - ort_out).max()),
        int8_key: int8.pop("int8_test_accuracy"),
        **int8,
        **latency,
        **{k: accounting[k] for k in ("calls_this_run", "calls_spent_total", "teacher_outputs", "teacher_lost")},
        "teacher_unanswered": queried.unanswered,
        "budget": accounting["budget"],
        "method": checkpoint.method,
        "test_size" if what == "test" else "agreement_size": int(len(x)),
        "onnx_model": str(onnx_path),
        "teacher_eval_calls": 0,
    }
    usage = ("prompt_tokens", "completion_tokens", "estimated_cost")  # an LLM teacher's
    metrics |= {key: value for key in usage if (value := accounting.get(f"{key}_this_run")) is not None}
    if what == "test" and config.evaluate_teacher == "auto" and teacher_is_standin(teacher):
        # Only the free stand-in is evaluated; these calls are reported apart from the budget.
        assert isinstance(teacher, OnnxTeacherConfig)
        teacher_scores = OnnxFileTeacher(teacher.model, teacher.output).predict(test.x)
        metrics["teacher_test_accuracy"] = accuracy(teacher_scores, test.labels)
        metrics["teacher_eval_calls"] = int(len(test.x))
    return metrics


def decision_metrics(metrics: dict[str, Any], accounting: Mapping[str, Any]) -> dict[str, Any]:
    """What experiments are compared by (`dvc exp show`, `make exps`): the ONNX fp32 student's test accuracy
    (or teacher agreement), the calls spent in the store, and an LLM teacher's estimated cost where priced."""
    onnx_key = score_keys(metrics)[1]
    cost = accounting.get("estimated_cost_this_run")
    estimated = {} if cost is None else {"estimated_cost": cost}
    return {onnx_key: metrics[onnx_key], "calls_spent_total": accounting["calls_spent_total"], **estimated}


def main(argv: list[str] | None = None) -> None:
    p = parser("validate", __doc__)
    for name in ("--checkpoint", "--onnx", "--test", "--queried", "--query-metrics"):
        p.add_argument(name, required=True)
    p.add_argument("--source", default=None, help="the source stage's fingerprint (identifies the data)")
    p.add_argument("--pool", default=None, help="the pool (the held-out inputs of a source without labels)")
    for name in ("--int8", "--train-metrics", "--card-json", "--card-md"):
        p.add_argument(name, required=True)
    p.add_argument("--decision", default=None, help="where to write the decision metrics (dvc exp show's columns)")
    p.add_argument("--bundle", default=None, help="the export stage's bundle (a text source reads raw texts with it)")

    def body(args: argparse.Namespace, params: Params) -> dict[str, Any]:
        checkpoint = StudentCheckpoint.load(args.checkpoint)
        queried, accounting = Queried.load(args.queried), read_accounting(args.query_metrics)
        metrics = validate(
            params.validation,
            params.teacher,
            checkpoint,
            args.onnx,
            args.int8,
            TestSet.load(args.test),
            queried,
            accounting,
            Pool.load(args.pool) if args.pool else None,
            args.bundle if params.data.text is not None else None,
        )
        if args.decision:
            write_metrics(args.decision, decision_metrics(metrics, accounting))
        # The card records every section of the validated params (defaults included); the `source` stage's
        # fingerprint identifies the data, the ONNX metadata what the input takes (`ckd.serving.input_scale`).
        scale = read_metadata(args.onnx).get("input_scale")
        card = build_card(
            metrics=metrics,
            checkpoint=vars(checkpoint),
            params=params.as_dict(),
            train_metrics=read_json(args.train_metrics),
            is_standin=teacher_is_standin(params.teacher),
            artifacts={"onnx": str(args.onnx), "int8": str(args.int8)},
            data_files=read_json(args.source)["files"] if args.source else None,
            input_scale=json.loads(scale) if scale else None,
        )
        write_model_card(card, args.card_json, args.card_md)
        return metrics

    def gates(args: argparse.Namespace, params: Params, metrics: dict[str, Any]) -> None:
        config = params.validation
        check_gates(metrics, config.min_accuracy, config.max_abs_diff, str(args.onnx), config.max_int8_drop)

    run("validate", p, body, argv, gate=gates)


if __name__ == "__main__":
    main()
