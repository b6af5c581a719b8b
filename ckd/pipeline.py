"""The pipeline's stages as functions: explicit paths in, metrics out. `stages/*.py` (DVC) and
`flows/` (Prefect, through DVC) call these; no stage logic lives anywhere else."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from ckd.config import (ComparativeConfig, DataConfig, ExportConfig, StudentConfig, TeacherConfig,
                        ValidateConfig)
from ckd.errors import CkdError
from ckd.jsonio import read_json, write_json  # noqa: F401  (re-exported: stages and flows read metrics)

# Stages import only what they use: torch, ONNX Runtime, Great Expectations and the teacher backends
# are imported inside the stage functions that need them (each stage is its own process; `sample`,
# `query`, `check` and `build` never load torch).

log = logging.getLogger(__name__)

STANDIN_MARK = "ckd_standin_teacher"


# -- teacher ------------------------------------------------------------------------------------
def teacher_stage(data: DataConfig, teacher: TeacherConfig, seed: int, out_model: str, progress=True) -> dict:
    """Train the stand-in teacher on the whole labelled pool and export it as ONNX (raw inputs)."""
    import torch

    from ckd.data import load_source, split_pool_test
    from ckd.export import export_onnx
    from ckd.teachers.standin import train_standin

    dataset = load_source(data.source)
    if dataset.y is None:
        raise CkdError(f"{data.source}: the stand-in teacher needs labels; set teacher.model to your own ONNX teacher")
    pool_ids, test_ids = split_pool_test(len(dataset.x), data.test_size, seed)
    model, input_shape = train_standin(dataset.x[pool_ids], dataset.y[pool_ids], dataset.num_classes,
                                       dataset.is_image, teacher.standin, seed, progress)
    export_onnx(model, input_shape, out_model, opset=17,
                metadata={STANDIN_MARK: "true", "class_names": list(dataset.class_names)})
    with torch.no_grad():
        x_test = torch.as_tensor(dataset.x[test_ids]).reshape(len(test_ids), *input_shape)
        test_acc = float((model(x_test).argmax(1).numpy() == dataset.y[test_ids]).mean())
    # Measured in-process on the PyTorch model: no teacher call is made or counted here.
    return {"standin_test_accuracy": test_acc, "pool_size": int(len(pool_ids)), "input_shape": list(input_shape)}


# -- sample -------------------------------------------------------------------------------------
def sample_stage(data: DataConfig, budget: int, seed: int, out_pool: str, out_test: str, out_selected: str) -> dict:
    from ckd.data import load_source, select_for_teacher, split_pool_test, write_arrays

    dataset = load_source(data.source)
    pool_ids, test_ids = split_pool_test(len(dataset.x), data.test_size, seed)
    selected = select_for_teacher(pool_ids, dataset.x[pool_ids], budget, data.selection, seed)
    pool = {"ids": pool_ids, "x": dataset.x[pool_ids], "class_names": np.asarray(dataset.class_names),
            "is_image": np.asarray(dataset.is_image)}
    if data.use_labels and dataset.y is not None:
        pool["labels"] = dataset.y[pool_ids]
    write_arrays(out_pool, **pool)
    if dataset.y is None:
        raise CkdError(f"{data.source}: the test split needs labels to measure accuracy (array 'y' or 'labels')")
    write_arrays(out_test, ids=test_ids, x=dataset.x[test_ids], labels=dataset.y[test_ids])
    write_arrays(out_selected, ids=selected)
    return {"pool_size": int(len(pool_ids)), "test_size": int(len(test_ids)), "selected": int(len(selected)),
            "labelled": "labels" in pool, "selection": data.selection}


# -- query --------------------------------------------------------------------------------------
def query_stage(teacher: TeacherConfig, pool_path: str, selected_path: str, out_queried: str,
                progress=True) -> dict:
    from ckd.data import read_arrays, write_arrays
    from ckd.query import run_query
    from ckd.teachers import build_teacher

    pool = read_arrays(pool_path, required=("ids", "x", "class_names"))
    selected = read_arrays(selected_path, required=("ids",))["ids"]
    if len(selected) > teacher.budget:
        raise CkdError(f"{selected_path}: {len(selected)} samples selected but teacher.budget is {teacher.budget}; "
                       "re-run the sample stage")
    position = {int(i): n for n, i in enumerate(pool["ids"])}
    missing = [int(i) for i in selected if int(i) not in position]
    if missing:
        raise CkdError(f"{selected_path}: ids {missing[:5]} are not in the pool {pool_path}")
    rows = np.asarray([position[int(i)] for i in selected])
    backend = build_teacher(teacher)
    result = run_query(backend, selected, pool["x"][rows], len(pool["class_names"]), teacher.budget, teacher.store,
                       teacher.batch_size, progress)
    if len(result.ids) < teacher.min_answered * len(selected):
        raise CkdError(
            f"teacher.min_answered={teacher.min_answered}: only {len(result.ids)} of {len(selected)} selected samples "
            f"have an answer; teacher.budget={teacher.budget} is spent ({result.teacher_calls} counted for this "
            f"teacher, {result.teacher_lost} lost); raise teacher.budget to at least "
            f"{result.teacher_calls + result.unanswered} or go back to the selection already paid for (seed, data.*)")
    write_arrays(out_queried, ids=result.ids, scores=result.scores)
    if result.unanswered:
        log.warning("%d selected samples have no answer: their calls were lost and teacher.budget=%d is spent; "
                    "training goes on without them (raise teacher.budget to ask again)",
                    result.unanswered, teacher.budget)
    return {"teacher_calls": result.teacher_calls, "teacher_outputs": result.teacher_outputs,
            "teacher_lost": result.teacher_lost, "teacher_rejected": result.teacher_rejected,
            "new_calls": result.new_calls, "selected": int(len(selected)), "answered_selected": int(len(result.ids)),
            "unanswered": result.unanswered, "budget": teacher.budget, "store": str(result.store)}


# -- check --------------------------------------------------------------------------------------
def check_stage(teacher: TeacherConfig, queried_path: str, pool_path: str, query_metrics_path: str,
                docs_dir: str | None = None) -> dict:
    from ckd.data import read_arrays
    from ckd.quality import ScoreExpectations, check_teacher_outputs

    queried = read_arrays(queried_path, required=("ids", "scores"))
    pool = read_arrays(pool_path, required=("ids", "class_names"))
    query_metrics = read_json(query_metrics_path)
    spec = ScoreExpectations(expected_rows=int(query_metrics["selected"]) - int(query_metrics["unanswered"]),
                             budget=teacher.budget, pool_ids=pool["ids"], num_classes=len(pool["class_names"]),
                             probabilities=teacher.scores == "probabilities")
    return check_teacher_outputs(queried["ids"], queried["scores"], spec, queried_path, docs_dir)


# -- build --------------------------------------------------------------------------------------
def build_stage(comparative: ComparativeConfig, scores_kind: str, seed: int, queried_path: str, pool_path: str,
                out_path: str) -> dict:
    from ckd.comparative import comparative_arrays
    from ckd.data import read_arrays, write_arrays

    queried = read_arrays(queried_path, required=("ids", "scores"))
    pool = read_arrays(pool_path, required=("ids", "x", "class_names", "is_image"))
    arrays = comparative_arrays(queried["ids"], queried["scores"], pool, scores_kind, comparative.group_size,
                                comparative.max_groups, seed)
    write_arrays(out_path, **arrays)
    return {"samples": int(len(arrays["ids"])), "groups": int(len(arrays["positives"])),
            "group_size": comparative.group_size, "labelled": "labels" in arrays}


# -- train --------------------------------------------------------------------------------------
def train_stage(student: StudentConfig, comparative_path: str, out_checkpoint: str, out_curve: str,
                progress=True) -> dict:
    import torch

    from ckd.data import read_arrays
    from ckd.runtime import torch_device
    from ckd.train import train_student

    arrays = read_arrays(comparative_path, required=("x", "teacher", "positives", "negatives", "norm_mean",
                                                     "norm_std", "class_names", "is_image"))
    device = torch_device(student.device)
    start = time.perf_counter()
    outcome = train_student(arrays, student, device, progress)
    seconds = time.perf_counter() - start
    checkpoint = {
        "state_dict": {k: v.cpu() for k, v in outcome.model.state_dict().items()},
        "arch": student.arch, "arch_args": dict(student.arch_args),
        "sample_shape": list(arrays["x"].shape[1:]), "num_classes": int(arrays["teacher"].shape[1]),
        "class_names": [str(c) for c in arrays["class_names"]],
        "method": student.method, "chosen": {"lr": outcome.chosen.lr, **outcome.chosen.method_args},
        "teacher_samples": int(len(arrays["x"])),
    }
    Path(out_checkpoint).parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out_checkpoint)
    Path(out_curve).parent.mkdir(parents=True, exist_ok=True)
    with open(out_curve, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "train_loss", "val_accuracy", "val_xent"])
        writer.writeheader()
        writer.writerows(outcome.curve)
    return {"method": student.method, "val_accuracy": outcome.val_accuracy, "best_step": outcome.best_step,
            "chosen": checkpoint["chosen"], "selection": outcome.selection, "device": outcome.device,
            "train_seconds": round(seconds, 2), "augment": outcome.augment, "refit": student.refit,
            "threads": outcome.threads, "precision": outcome.precision}


def load_student(checkpoint_path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the student from its checkpoint (weights_only: no pickled code is ever loaded)."""
    import torch

    from ckd.students import build_student

    path = Path(checkpoint_path)
    if not path.is_file():
        raise CkdError(f"{path}: student checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CkdError(f"{path}: not a readable student checkpoint ({str(error).splitlines()[0]})") from None
    state = checkpoint["state_dict"]
    model = build_student(checkpoint["arch"], checkpoint["sample_shape"], checkpoint["num_classes"],
                          state["normalize.mean"].numpy(), state["normalize.std"].numpy(), checkpoint["arch_args"])
    model.load_state_dict(state)
    return model.eval(), checkpoint


# -- export -------------------------------------------------------------------------------------
def export_stage(export: ExportConfig, checkpoint_path: str, query_metrics_path: str, out_model: str,
                 pool_path: str, selected_path: str, out_int8: str, out_bundle: str) -> dict:
    from ckd.export import export_onnx
    from ckd.quantize import int8_from_pool
    from ckd.serving import add_probabilities, write_bundle

    model, checkpoint = load_student(checkpoint_path)
    query_metrics = read_json(query_metrics_path)
    metadata = {"class_names": checkpoint["class_names"], "input_shape": ["batch", *checkpoint["sample_shape"]],
                "method": checkpoint["method"], "budget": query_metrics["budget"],
                "teacher_calls": query_metrics["teacher_calls"], "teacher_samples": checkpoint["teacher_samples"]}
    export_onnx(model, checkpoint["sample_shape"], out_model, export.opset, metadata)
    if export.probabilities:
        add_probabilities(out_model)
    int8 = int8_from_pool(out_model, out_int8, pool_path, selected_path, export.int8_calibration_samples,
                          export.int8_per_channel, export.int8_calibration_method)
    bundle = write_bundle(out_model, out_bundle, export.name, checkpoint["class_names"], export.max_batch_size,
                          export.storage_uri)
    return {"opset": export.opset, "bytes": Path(out_model).stat().st_size, **int8, **bundle}


# -- validate -----------------------------------------------------------------------------------
def validate_stage(validate: ValidateConfig, teacher: TeacherConfig, checkpoint_path: str, onnx_path: str,
                   test_path: str, query_metrics_path: str, out_metrics: str, int8_path: str, train_metrics_path: str,
                   params: dict, out_card_json: str, out_card_md: str) -> dict:
    """Measure, write `out_metrics` and the model card, then apply the gates (both are kept when a gate fails)."""
    from ckd.data import read_arrays
    from ckd.export import read_metadata
    from ckd.latency import measure as measure_latency, onnx_runner, torch_runner
    from ckd.model_card import build_card, write_model_card
    from ckd.quantize import int8_metrics
    from ckd.teachers.onnx_file import OnnxFileTeacher
    from ckd.validate import accuracy, check_gates, onnx_logits, torch_logits

    test = read_arrays(test_path, required=("x", "labels"))
    model, checkpoint = load_student(checkpoint_path)
    query_metrics = read_json(query_metrics_path)
    pt = torch_logits(model, test["x"])
    ort_out = onnx_logits(onnx_path, test["x"])
    metrics = {
        "test_accuracy": accuracy(pt, test["labels"]), "onnx_test_accuracy": accuracy(ort_out, test["labels"]),
        "onnx_max_abs_diff": float(np.abs(pt - ort_out).max()),
        **int8_metrics(ort_out, onnx_logits(int8_path, test["x"]), test["labels"]),
        **measure_latency({"torch": lambda x: torch_runner(model, x), "": lambda x: onnx_runner(onnx_path, x),
                           "int8": lambda x: onnx_runner(int8_path, x)}, test["x"], validate.latency_runs),
        "teacher_calls": query_metrics["teacher_calls"], "teacher_outputs": query_metrics["teacher_outputs"],
        "teacher_lost": query_metrics["teacher_lost"], "teacher_unanswered": query_metrics["unanswered"],
        "budget": query_metrics["budget"],
        "method": checkpoint["method"], "test_size": int(len(test["x"])), "onnx_model": str(onnx_path),
        "teacher_eval_calls": 0,
    }
    is_standin = (teacher.kind in ("onnx", "counting") and Path(teacher.model).is_file()
                  and read_metadata(teacher.model).get(STANDIN_MARK) == "true")
    if validate.evaluate_teacher == "auto" and is_standin:
        # Only the free stand-in is evaluated; these calls are reported apart from the budget.
        standin = OnnxFileTeacher(teacher.model, teacher.output)
        teacher_scores = standin.predict(test["x"])
        metrics["teacher_test_accuracy"] = accuracy(teacher_scores, test["labels"])
        metrics["teacher_eval_calls"] = int(len(test["x"]))
    write_json(out_metrics, metrics)
    card = build_card(metrics, checkpoint, params, read_json(train_metrics_path), is_standin,
                      {"onnx": onnx_path, "int8": int8_path})
    write_model_card(card, out_card_json, out_card_md)
    check_gates(metrics, validate.min_accuracy, validate.max_abs_diff, onnx_path, validate.max_int8_drop)
    return metrics
