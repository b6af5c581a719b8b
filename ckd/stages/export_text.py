"""`export_text`: the complete text model, one ONNX graph (token ids -> frozen encoder -> trained head) with
the tokenizer beside it (`ckd.export_text`)."""

from __future__ import annotations

from pathlib import Path

from ckd.config import ExportConfig
from ckd.query import Queried
from ckd.students.checkpoint import StudentCheckpoint


def export_text(config: ExportConfig, checkpoint: StudentCheckpoint, queried: Queried, out_dir: str | Path) -> dict:
    from ckd.export_text import MODEL_FILE, export_text_bundle

    metadata = {
        "class_names": checkpoint.class_names,
        "method": checkpoint.method,
        "budget": queried.budget,
        "calls_spent_total": queried.calls_spent_total,
        "teacher_samples": checkpoint.teacher_samples,
    }
    export_text_bundle(checkpoint.model(), out_dir, config.opset, metadata)
    return {"opset": config.opset, "bytes": (Path(out_dir) / MODEL_FILE).stat().st_size}
