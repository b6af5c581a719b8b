"""The serving bundle `export` writes beside the ONNX student: a Triton model repository, a KServe
InferenceService and MLServer settings, all for one and the same `model.onnx`.

    models/serving/triton/<name>/config.pbtxt        platform onnxruntime_onnx, dynamic batching
    models/serving/triton/<name>/labels.txt          class names, one a line (label_filename)
    models/serving/triton/<name>/1/model.onnx        the student
    models/serving/kserve/inferenceservice.yaml      v1beta1 `onnx` predictor, protocolVersion v2
    models/serving/mlserver/model-settings.json      uri -> the Triton repository's model.onnx
    models/serving/mlserver/settings.json
    models/serving/mlserver/mlserver_onnx.py         MLServer 1.7 has no ONNX runtime: ours, copied in

Input and output names, types and dims are read from the ONNX graph, never written twice.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ckd.errors import CkdError
from ckd.export import OUTPUT_NAME

PROBABILITIES_NAME = "probabilities"
LABELS_FILE = "labels.txt"
QUEUE_DELAY_US = 100  # dynamic batching: how long a request may wait for others to join its batch
MLSERVER_RUNTIME = Path(__file__).resolve().parents[1] / "serving" / "mlserver_onnx.py"
# Triton's and the Open Inference Protocol's names for ONNX element types.
_TRITON_TYPE = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
}
_V2_TYPE = {1: "FP32", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "FP16", 11: "FP64"}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, ONNX element type, shape with the batch axis as -1."""

    name: str
    elem_type: int
    shape: tuple[int, ...]

    @property
    def triton_type(self) -> str:
        return _TRITON_TYPE[self.elem_type]

    @property
    def v2_type(self) -> str:
        return _V2_TYPE[self.elem_type]


def graph_io(path: str | Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX file; a symbolic dimension (the batch) becomes -1."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def spec(value) -> TensorSpec:
        tensor = value.type.tensor_type
        if tensor.elem_type not in _TRITON_TYPE:
            raise CkdError(f"{path}: {value.name} has ONNX element type {tensor.elem_type}, which is not served")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        return TensorSpec(value.name, tensor.elem_type, dims)

    return [spec(v) for v in graph.input if v.name not in initializers], [spec(v) for v in graph.output]


def add_probabilities(path: str | Path) -> None:
    """Append `probabilities = softmax(logits, axis=-1)` as a second graph output, in place."""
    import onnx
    from onnx import helper

    proto = onnx.load(str(path))
    logits = next((o for o in proto.graph.output if o.name == OUTPUT_NAME), None)
    if logits is None:
        raise CkdError(f"{path}: no output named {OUTPUT_NAME!r} to take the softmax of")
    if any(o.name == PROBABILITIES_NAME for o in proto.graph.output):
        return
    proto.graph.node.append(
        helper.make_node("Softmax", [OUTPUT_NAME], [PROBABILITIES_NAME], axis=-1, name="probabilities_softmax")
    )
    output = onnx.ValueInfoProto()
    output.CopyFrom(logits)
    output.name = PROBABILITIES_NAME
    proto.graph.output.append(output)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def _dims(spec: TensorSpec, batched: bool) -> str:
    shape = spec.shape[1:] if batched else spec.shape
    return ", ".join(str(d) for d in shape)


def triton_config(
    name: str, inputs: list[TensorSpec], outputs: list[TensorSpec], max_batch_size: int, queue_delay_us: int
) -> str:
    """Triton's config.pbtxt (protobuf text of inference.ModelConfig); dims leave out the batch axis."""
    lines = [f'name: "{name}"', 'platform: "onnxruntime_onnx"', f"max_batch_size: {max_batch_size}", "input ["]

    def entry(spec: TensorSpec, extra: str = "") -> str:
        return (
            f'  {{\n    name: "{spec.name}"\n    data_type: {spec.triton_type}\n    dims: [ {_dims(spec, True)} ]\n'
            f"{extra}  }}"
        )

    lines += [",\n".join(entry(s) for s in inputs), "]", "output ["]
    lines += [",\n".join(entry(s, f'    label_filename: "{LABELS_FILE}"\n') for s in outputs), "]"]
    lines += ["dynamic_batching {", f"  max_queue_delay_microseconds: {queue_delay_us}", "}"]
    return "\n".join(lines) + "\n"


def kserve_manifest(name: str, storage_uri: str) -> str:
    """KServe's v1beta1 InferenceService: the `onnx` predictor (Triton underneath) over protocol v2.
    `storage_uri` holds the Triton repository (`<name>/config.pbtxt`), so the served model is `<name>`."""
    service = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")  # a DNS-1123 label
    return (
        "\n".join(
            [
                "apiVersion: serving.kserve.io/v1beta1",
                "kind: InferenceService",
                "metadata:",
                f"  name: {service}",
                "spec:",
                "  predictor:",
                "    onnx:",
                "      protocolVersion: v2",
                f"      storageUri: {json.dumps(storage_uri)}",
                "      resources:",
                "        requests: {cpu: 100m, memory: 256Mi}",
                "        limits: {cpu: '1', memory: 1Gi}",
            ]
        )
        + "\n"
    )


def mlserver_settings(
    name: str,
    model_uri: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    max_batch_size: int,
    queue_delay_us: int,
) -> tuple[dict, dict]:
    """(model-settings.json, settings.json) for MLServer with the bundled ONNX Runtime runtime."""
    model = {
        "name": name,
        "implementation": "mlserver_onnx.OnnxModel",
        "parameters": {"uri": model_uri, "version": "1"},
        "inputs": [{"name": s.name, "datatype": s.v2_type, "shape": list(s.shape)} for s in inputs],
        "outputs": [{"name": s.name, "datatype": s.v2_type, "shape": list(s.shape)} for s in outputs],
        "max_batch_size": max_batch_size,
        "max_batch_time": queue_delay_us / 1e6,
    }
    # Ports stay MLServer's defaults (8080 REST, 8081 gRPC) so MLSERVER_* variables can move them.
    server = {"debug": False, "parallel_workers": 0, "load_models_at_startup": True}
    return model, server


def write_bundle(
    onnx_path: str | Path,
    out_dir: str | Path,
    name: str,
    class_names: list[str],
    max_batch_size: int,
    storage_uri: str,
    queue_delay_us: int = QUEUE_DELAY_US,
) -> dict:
    """Write the three servers' files for `onnx_path` under `out_dir`; return what was written."""
    out_dir = Path(out_dir)
    for server in ("triton", "kserve", "mlserver"):  # only what this function writes; a stale model name goes too
        shutil.rmtree(out_dir / server, ignore_errors=True)
    inputs, outputs = graph_io(onnx_path)
    triton_dir = out_dir / "triton" / name
    (triton_dir / "1").mkdir(parents=True)
    shutil.copyfile(onnx_path, triton_dir / "1" / "model.onnx")
    (triton_dir / LABELS_FILE).write_text("".join(f"{c}\n" for c in class_names))
    (triton_dir / "config.pbtxt").write_text(triton_config(name, inputs, outputs, max_batch_size, queue_delay_us))
    (out_dir / "kserve").mkdir()
    (out_dir / "kserve" / "inferenceservice.yaml").write_text(kserve_manifest(name, storage_uri))
    mlserver_dir = out_dir / "mlserver"
    mlserver_dir.mkdir()
    model_settings, server_settings = mlserver_settings(
        name, f"../triton/{name}/1/model.onnx", inputs, outputs, max_batch_size, queue_delay_us
    )
    (mlserver_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2) + "\n")
    (mlserver_dir / "settings.json").write_text(json.dumps(server_settings, indent=2) + "\n")
    shutil.copyfile(MLSERVER_RUNTIME, mlserver_dir / MLSERVER_RUNTIME.name)
    return {
        "bundle": str(out_dir),
        "served_name": name,
        "inputs": [s.name for s in inputs],
        "outputs": [s.name for s in outputs],
    }
