"""`export`: the student to ONNX (dynamic batch axis, pinned opset, metadata), its int8 model calibrated on
free pool inputs, and the serving bundle (`ckd.export`, `ckd.quantize`, `ckd.serving`)."""

from __future__ import annotations

from pathlib import Path

from ckd.config import ExportConfig
from ckd.data import Pool, Selection
from ckd.export import INPUT_NAME, export_onnx
from ckd.quantize import int8_from_pool
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
) -> dict:
    scale = input_scale(pool.x, INPUT_NAME)
    metadata = {
        "class_names": checkpoint.class_names,
        "input_scale": scale,
        "input_shape": ["batch", *checkpoint.sample_shape],
        "method": checkpoint.method,
        "budget": queried.budget,
        "calls_spent_total": queried.calls_spent_total,
        "teacher_samples": checkpoint.teacher_samples,
    }
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
    bundle = write_bundle(
        out_model,
        out_bundle,
        config.name,
        checkpoint.class_names,
        config.max_batch_size,
        config.storage_uri,
        scale=scale,
    )
    return {"opset": config.opset, "bytes": Path(out_model).stat().st_size, **int8, **bundle}
