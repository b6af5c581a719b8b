"""`export`: the student to ONNX (dynamic batch axis, pinned opset, metadata), its int8 model and the serving
bundle (`ckd.export`, `ckd.quantize`, `ckd.serving`). An image or table student: int8 calibrated on free pool
inputs, the bundle for Triton, KServe and MLServer. A text source's student (`data.text`): one graph from
token ids to logits (the frozen encoder and the trained head), its tokenizer beside it in the bundle, int8 by
dynamic quantisation."""

from __future__ import annotations

import shutil
from pathlib import Path

from ckd.config import ExportConfig
from ckd.data import Pool, Selection
from ckd.export import INPUT_NAME, MODEL_FILE, export_onnx, export_text_bundle
from ckd.quantize import int8_dynamic, int8_from_pool
from ckd.query import Queried
from ckd.serving import add_probabilities, input_scale, write_bundle
from ckd.students.checkpoint import StudentCheckpoint


def export(
    config: ExportConfig,
    checkpoint: StudentCheckpoint,
    queried: Queried,
    pool: Pool,
    selection: Selection,
    out_model: str | Path,
    out_int8: str | Path,
    out_bundle: str | Path,
    text: bool = False,
) -> dict:
    metadata = {
        "class_names": checkpoint.class_names,
        "method": checkpoint.method,
        "budget": queried.budget,
        "calls_spent_total": queried.calls_spent_total,
        "teacher_samples": checkpoint.teacher_samples,
    }
    if text:
        bundle = export_text_bundle(checkpoint.model(), out_bundle, config.opset, metadata)
        shutil.copyfile(bundle / MODEL_FILE, out_model)  # the graph alone, where an image student's lies
        int8 = int8_dynamic(out_model, out_int8)
        return {"opset": config.opset, "bytes": Path(out_model).stat().st_size, **int8, "bundle": str(bundle)}
    scale = input_scale(pool.x, INPUT_NAME)
    metadata["input_scale"] = scale
    metadata["input_shape"] = ["batch", *checkpoint.sample_shape]
    export_onnx(checkpoint.model(), checkpoint.sample_shape, out_model, config.opset, metadata)
    if config.probabilities:
        add_probabilities(out_model)
    int8 = int8_from_pool(
        out_model,
        out_int8,
        pool,
        selection.ids,
        config.int8_calibration_samples,
        config.int8_per_channel,
        config.int8_calibration_method,
    )
    bundle_files = write_bundle(
        out_model,
        out_bundle,
        config.name,
        checkpoint.class_names,
        config.max_batch_size,
        config.storage_uri,
        scale=scale,
    )
    return {"opset": config.opset, "bytes": Path(out_model).stat().st_size, **int8, **bundle_files}
