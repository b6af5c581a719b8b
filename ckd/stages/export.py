"""`export`: the student to ONNX (dynamic batch axis, pinned opset, metadata), its int8 model and the serving
bundle (`ckd.export`, `ckd.quantize`, `ckd.serving`). An image or table student's int8 is calibrated on free
pool inputs; a text source's student is one graph from token ids to logits, int8 by dynamic quantisation, its
tokenizer beside it in every layout. An LLM teacher's label words (`teacher.label_words`) name the classes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ckd.config import ExportConfig
from ckd.data import Pool, Selection
from ckd.errors import ConfigError
from ckd.export import INPUT_NAME, export_onnx, export_text_bundle
from ckd.quantize import int8_dynamic, int8_from_pool
from ckd.query import read_accounting
from ckd.serving import add_probabilities, input_scale, token_input, write_bundle
from ckd.stages._entry import parser, run
from ckd.students.checkpoint import StudentCheckpoint
from ckd.text_bundle import BUNDLE_FILE, MODEL_FILE, TOKENIZER_FILE


def class_names(checkpoint: StudentCheckpoint, label_words: Sequence[str] | None) -> list[str]:
    """The names the exported model gives its classes: an LLM teacher's label words (one per class, in class
    order: the words it was asked to answer with), else the data's labels."""
    if not label_words:
        return list(checkpoint.class_names)
    if len(label_words) != len(checkpoint.class_names):
        raise ConfigError(
            "teacher.label_words",
            f"must give one word per class ({len(checkpoint.class_names)}: "
            f"{', '.join(checkpoint.class_names[:5])}), got {len(label_words)}",
        )
    return list(label_words)


def export(
    config: ExportConfig,
    checkpoint: StudentCheckpoint,
    accounting: Mapping[str, Any],
    pool: Pool,
    selection: Selection,
    out_model: str | Path,
    out_int8: str | Path,
    out_bundle: str | Path,
    text: bool = False,
    label_words: Sequence[str] | None = None,
) -> dict[str, Any]:
    names = class_names(checkpoint, label_words)
    metadata = {
        "class_names": names,
        "method": checkpoint.method,
        "budget": accounting["budget"],
        "calls_spent_total": accounting["calls_spent_total"],
        "teacher_samples": checkpoint.teacher_samples,
    }
    if names != list(checkpoint.class_names):
        metadata["data_labels"] = list(checkpoint.class_names)  # the source's labels, in the same order
    if text:
        bundle = export_text_bundle(checkpoint.model(), out_bundle, config.opset, metadata)
        served, beside = bundle / MODEL_FILE, [bundle / TOKENIZER_FILE]
        if config.probabilities:
            add_probabilities(served)
        shutil.copyfile(served, out_model)  # the graph alone, where an image student's lies
        int8 = int8_dynamic(out_model, out_int8)
        scale = token_input(json.loads((bundle / BUNDLE_FILE).read_text()))
    else:
        served, beside, scale = Path(out_model), [], input_scale(pool.x, INPUT_NAME)
        metadata |= {"input_scale": scale, "input_shape": ["batch", *checkpoint.sample_shape]}
        export_onnx(checkpoint.model(), checkpoint.sample_shape, out_model, config.opset, metadata)
        if config.probabilities:
            add_probabilities(out_model)
        int8 = int8_from_pool(out_model, out_int8, pool, selection.ids, config)
    bundle_files = write_bundle(
        served, out_bundle, config.name, names, config.max_batch_size, config.storage_uri, scale=scale, beside=beside
    )
    return {"opset": config.opset, "bytes": Path(out_model).stat().st_size, **int8, **bundle_files}


def main(argv: list[str] | None = None) -> None:
    p = parser("export", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--query-metrics", required=True, help="the query stage's metrics (budget and calls for the metadata)"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--pool", required=True, help="pool inputs; those never sent to the teacher calibrate int8")
    p.add_argument("--selected", required=True)
    p.add_argument("--out-int8", required=True)
    p.add_argument("--out-bundle", required=True, help="the serving bundle's folder (Triton, KServe, MLServer; text)")
    run(
        "export",
        p,
        lambda args, params: export(
            params.export,
            StudentCheckpoint.load(args.checkpoint),
            read_accounting(args.query_metrics),
            Pool.load(args.pool),
            Selection.load(args.selected),
            args.out,
            args.out_int8,
            args.out_bundle,
            text=params.data.text is not None,
            label_words=getattr(params.teacher, "label_words", None),  # an LLM teacher's words name the classes
        ),
        argv,
    )


if __name__ == "__main__":
    main()
