"""The serving bundle `export` writes beside the ONNX student: a Triton model repository, a KServe
InferenceService and MLServer settings, all for one and the same `model.onnx`, each laid out as its server
documents it.

    models/serving/input.json                           what the input takes (raw values; scaling in the graph;
                                                        a text model: token ids of the tokenizer beside it)
    models/serving/triton/<name>/config.pbtxt           platform onnxruntime_onnx, dynamic batching
    models/serving/triton/<name>/labels.txt             class names, one a line (label_filename)
    models/serving/triton/<name>/tokenizer.json         a text model: the tokenizer that makes its token ids
    models/serving/triton/<name>/1/model.onnx           the student
    models/serving/kserve/inferenceservice.yaml         v1beta1 predictor.model, modelFormat onnx, protocol v2
    models/serving/mlserver/settings.json               the server's settings (`mlserver start models/serving/mlserver`)
    models/serving/mlserver/<name>/model-settings.json  the model, in a folder named as the model; uri -> model.onnx
    models/serving/mlserver/<name>/mlserver_onnx.py     MLServer 1.7 has no ONNX runtime: ours, copied in
    models/serving/mlserver/<name>/tokenizer.json       a text model: the same tokenizer

Input and output names, types and dims are read from the ONNX graph, never written twice.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ckd.errors import CkdError
from ckd.export import OUTPUT_NAME

PROBABILITIES_NAME = "probabilities"
LABELS_FILE = "labels.txt"
INPUT_FILE = "input.json"
QUEUE_DELAY_US = 100  # dynamic batching: how long a request may wait for others to join its batch
MLSERVER_RUNTIME = Path(__file__).resolve().parents[1] / "serving" / "mlserver_onnx.py"
# The Open Inference Protocol's names for ONNX element types (Triton's: the same with "TYPE_" before them).
_V2_TYPE = {1: "FP32", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "FP16", 11: "FP64"}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, Open Inference Protocol type, shape with the batch axis as -1."""

    name: str
    v2_type: str
    shape: tuple[int, ...]


def graph_io(path: str | Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX file; a symbolic dimension (the batch) becomes -1."""
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        if tensor.elem_type not in _V2_TYPE:
            raise CkdError(f"{path}: {value.name} has ONNX element type {tensor.elem_type}, which is not served")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        return TensorSpec(value.name, _V2_TYPE[tensor.elem_type], dims)

    return [spec(v) for v in graph.input if v.name not in initializers], [spec(v) for v in graph.output]


def add_probabilities(path: str | Path) -> None:
    """Append `probabilities = softmax(logits, axis=-1)` as a second graph output, in place."""
    proto = onnx.load(str(path))
    if (logits := next((o for o in proto.graph.output if o.name == OUTPUT_NAME), None)) is None:
        raise CkdError(f"{path}: no output named {OUTPUT_NAME!r} to take the softmax of")
    if any(o.name == PROBABILITIES_NAME for o in proto.graph.output):
        return
    node = onnx.helper.make_node("Softmax", [OUTPUT_NAME], [PROBABILITIES_NAME], axis=-1, name="probabilities_softmax")
    proto.graph.node.append(node)
    output = proto.graph.output.add()
    output.CopyFrom(logits)
    output.name = PROBABILITIES_NAME
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def triton_config(name: str, inputs: list[TensorSpec], outputs: list[TensorSpec], max_batch_size: int) -> str:
    """Triton's config.pbtxt (protobuf text of inference.ModelConfig); dims leave out the batch axis."""
    lines = [f'name: "{name}"', 'platform: "onnxruntime_onnx"', f"max_batch_size: {max_batch_size}", "input ["]

    def entry(spec: TensorSpec, extra: str = "") -> str:
        dims = ", ".join(str(d) for d in spec.shape[1:])
        return f'  {{\n    name: "{spec.name}"\n    data_type: TYPE_{spec.v2_type}\n    dims: [ {dims} ]\n{extra}  }}'

    lines += [",\n".join(entry(s) for s in inputs), "]", "output ["]
    lines += [",\n".join(entry(s, f'    label_filename: "{LABELS_FILE}"\n') for s in outputs), "]"]
    lines += ["dynamic_batching {", f"  max_queue_delay_microseconds: {QUEUE_DELAY_US}", "}"]
    return "\n".join(lines) + "\n"


def input_scale(x: Any, name: str) -> dict[str, Any]:
    """What the served model's input takes, for the model card and the bundle: raw values as the data source
    holds them (pixel values, a table's own units), never scaled beforehand; the graph scales them itself
    (`ckd.students.base.Normalize`: (x - mean) / std with the pool's statistics)."""
    x = np.asarray(x, dtype=np.float32)
    return {
        "input": name,
        "values": "raw, as the data source holds them (image pixel values, a table's own units); do not scale "
        "them to [0, 1] or standardise them: the model does",
        "scaling_in_graph": "(x - mean) / std, per-feature mean and std of the pool's raw inputs",
        "observed_min": float(x.min()) if x.size else None,
        "observed_max": float(x.max()) if x.size else None,
    }


def token_input(description: dict[str, Any]) -> dict[str, Any]:
    """What a text model's served graph takes (input.json): token ids, not text; `description` is the text
    bundle's `bundle.json` (ckd.export.export_text_bundle)."""
    ids, mask = description["inputs"]
    return {
        "inputs": [ids, mask],
        "values": f"token ids, not text: {ids} int64 [batch, tokens] from the tokenizer beside the model "
        f"({description['tokenizer']}: truncation at {description['max_tokens']} tokens, padding with id 0 to "
        f"the longest text of the batch); {mask} int64 [batch, tokens], 1 for a token, 0 for padding",
        **{key: description[key] for key in ("tokenizer", "max_tokens", "encoder")},
        "python": "ckd.text_bundle.TextBundle(folder).tokenize(texts) makes both (tokenizers only, no torch)",
    }


def kserve_manifest(name: str, storage_uri: str) -> str:
    """KServe's v1beta1 InferenceService, `predictor.model` as its docs use it: `modelFormat: onnx` (Triton serves
    it), protocol v2; `storage_uri` holds the Triton repository, so the served model is `<name>`."""
    service = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")  # a DNS-1123 label
    return f"""apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {service}
spec:
  predictor:
    model:
      modelFormat:
        name: onnx
      protocolVersion: v2
      storageUri: {json.dumps(storage_uri)}
      resources:
        requests: {{cpu: 100m, memory: 256Mi}}
        limits: {{cpu: '1', memory: 1Gi}}
"""


def write_bundle(
    onnx_path: str | Path,
    out_dir: str | Path,
    name: str,
    class_names: list[str],
    max_batch_size: int,
    storage_uri: str,
    scale: dict[str, Any] | None = None,
    beside: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Write the three servers' files for `onnx_path` under `out_dir`, and `scale` (`input_scale`, or a text
    model's `token_input`) to `input.json`; `beside` (a text model's tokenizer) is copied into the model's
    Triton and MLServer folders. Return what was written."""
    out_dir = Path(out_dir)
    for server in ("triton", "kserve", "mlserver"):  # only what this function writes; a stale model name goes too
        shutil.rmtree(out_dir / server, ignore_errors=True)
    (out_dir / INPUT_FILE).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    if scale:
        (out_dir / INPUT_FILE).write_text(json.dumps(scale, indent=2) + "\n")
    inputs, outputs = graph_io(onnx_path)
    triton_dir = out_dir / "triton" / name
    (triton_dir / "1").mkdir(parents=True)
    shutil.copyfile(onnx_path, triton_dir / "1" / "model.onnx")
    (triton_dir / LABELS_FILE).write_text("".join(f"{c}\n" for c in class_names))
    (triton_dir / "config.pbtxt").write_text(triton_config(name, inputs, outputs, max_batch_size))
    (out_dir / "kserve").mkdir()
    (out_dir / "kserve" / "inferenceservice.yaml").write_text(kserve_manifest(name, storage_uri))
    mlserver_dir = out_dir / "mlserver" / name  # MLServer's convention: the model's folder is named as the model
    mlserver_dir.mkdir(parents=True)
    extra = {"extra": {"input_scale": scale}} if scale else {}
    model_settings = {  # for the bundled ONNX Runtime runtime
        "name": name,
        "implementation": "mlserver_onnx.OnnxModel",
        "parameters": {"uri": f"../../triton/{name}/1/model.onnx", "version": "1", **extra},
        "inputs": [{"name": s.name, "datatype": s.v2_type, "shape": list(s.shape)} for s in inputs],
        "outputs": [{"name": s.name, "datatype": s.v2_type, "shape": list(s.shape)} for s in outputs],
        "max_batch_size": max_batch_size,
        "max_batch_time": QUEUE_DELAY_US / 1e6,
    }
    # Ports stay MLServer's defaults (8080 REST, 8081 gRPC) so MLSERVER_* variables can move them.
    server_settings = {"debug": False, "parallel_workers": 0, "load_models_at_startup": True}
    (mlserver_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2) + "\n")
    (mlserver_dir.parent / "settings.json").write_text(json.dumps(server_settings, indent=2) + "\n")
    shutil.copyfile(MLSERVER_RUNTIME, mlserver_dir / MLSERVER_RUNTIME.name)
    for copied, folder in itertools.product(map(Path, beside), (triton_dir, mlserver_dir)):
        shutil.copyfile(copied, folder / copied.name)
    return {
        "bundle": str(out_dir),
        "served_name": name,
        "inputs": [s.name for s in inputs],
        "outputs": [s.name for s in outputs],
    }
