"""ONNX export: dynamic batch axis, pinned opset, named input/output, metadata, full checker pass.

A text source's student is exported whole, as a bundle that goes from raw text to scores:

    <bundle>/student.onnx    token ids -> frozen encoder -> trained head -> logits
                             inputs `input_ids`, `attention_mask` int64 [batch, tokens]; output `logits`
    <bundle>/tokenizer.json  the exact tokenizer of training (truncation and padding settings included)
    <bundle>/bundle.json     file names, input names, class names (an LLM teacher's label words), encoder,
                             token limit

`ckd.text_bundle.TextBundle` reads it back with ONNX Runtime and `tokenizers` alone (no torch), as a server
would; the tests check that it gives the same token ids as training's tokenizer.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
import torch

from ckd.text_bundle import BUNDLE_FILE, MODEL_FILE, TEXT_INPUT_NAMES, TOKENIZER_FILE

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def _export(
    model: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    input_axes: dict[str, dict[int, str]],
    opset: int,
    metadata: dict[str, Any],
) -> Path:
    """Trace `model` on `example` to `path` (output batch axis dynamic), add `metadata`, run the full checker."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=list(input_axes),
            output_names=[OUTPUT_NAME],
            dynamic_axes={**input_axes, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    proto.producer_name = "ckd"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def export_onnx(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    path: str | Path,
    opset: int,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Export `model` (raw inputs [batch, *input_shape] -> logits [batch, classes]) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.zeros(2, *input_shape),)
    return _export(model.to("cpu").eval(), example, path, {INPUT_NAME: {0: "batch"}}, opset, metadata or {})


def read_metadata(path: str | Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def export_text_bundle(head: torch.nn.Module, out_dir: str | Path, opset: int, metadata: dict[str, Any]) -> Path:
    """Chain the frozen encoder and `head`, export one ONNX graph and write the bundle to `out_dir`."""
    from ckd.students import text_encoder

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = text_encoder.TextClassifier(text_encoder.SentenceEncoder(), head.to("cpu")).eval()
    tokenizer = text_encoder.load_tokenizer()
    texts = ["an example text for tracing", "a second, longer example text for tracing"]
    example = tuple(torch.as_tensor(a) for a in text_encoder.tokenize(tokenizer, texts))
    description = {
        **metadata,
        "encoder": text_encoder.ENCODER_NAME,
        "max_tokens": text_encoder.max_tokens(),
        "inputs": list(TEXT_INPUT_NAMES),
        "output": OUTPUT_NAME,
        "model": MODEL_FILE,
        "tokenizer": TOKENIZER_FILE,
    }
    axes = {name: {0: "batch", 1: "tokens"} for name in TEXT_INPUT_NAMES}
    _export(model, example, out_dir / MODEL_FILE, axes, opset, description)
    tokenizer.save(str(out_dir / TOKENIZER_FILE))
    (out_dir / BUNDLE_FILE).write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    return out_dir
