"""ONNX export: dynamic batch axis, pinned opset, named input/output, metadata, full checker pass."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    path: str | Path,
    opset: int,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Export `model` (raw inputs [batch, *input_shape] -> logits [batch, classes]) to `path`."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    example = torch.zeros(2, *input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    proto.producer_name = "ckd"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
