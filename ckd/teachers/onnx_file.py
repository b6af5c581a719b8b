"""A teacher given as an ONNX file, run by ONNX Runtime (CUDA where usable, else CPU)."""

from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ckd.errors import CkdError, TeacherError
from ckd.runtime import onnx_session
from ckd.teachers.base import (
    CLASS_NAMES_KEY,
    TEACHERS,
    ZIPMAP_ADVICE,
    DeclaredModel,
    TeacherRefused,
    TeacherSettings,
    parse_class_names,
)

# ONNX Runtime's type names: tensor(float) is float32, tensor(double) float64, the others numpy's names
_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64} | {
    f"tensor({name})": getattr(np, name) for name in ("float16", "uint8", "int8", "int32", "int64")
}
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")


def _sha(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _tensor_digest(tensor: Any) -> str:
    """A weight by what it holds (dtype, shape, values), whatever it is named and however it is stored."""
    from onnx import numpy_helper

    values = numpy_helper.to_array(tensor)
    return _sha("tensor", str(values.dtype), str(values.shape), values.tobytes())


def _type_digest(value_type: Any) -> str:
    """A value's type without the names of its symbolic dimensions (`batch` and `N` are the same)."""
    from onnx import TypeProto

    value_type = TypeProto.FromString(value_type.SerializeToString())
    for holder in (value_type.tensor_type, value_type.sparse_tensor_type):
        for dim in holder.shape.dim:
            dim.ClearField("dim_param")
            dim.ClearField("denotation")
    value_type.ClearField("denotation")
    return _sha(value_type.SerializeToString(deterministic=True))


def _attribute_digest(attribute: Any, outer: dict[str, str]) -> str:
    from onnx import AttributeProto

    attribute = AttributeProto.FromString(attribute.SerializeToString())
    attribute.ClearField("doc_string")
    graphs = [_graph_digest(g, outer)[0] for g in ([attribute.g] if attribute.HasField("g") else [])]
    graphs += [_graph_digest(g, outer)[0] for g in attribute.graphs]
    tensors = [_tensor_digest(t) for t in ([attribute.t] if attribute.HasField("t") else [])]
    tensors += [_tensor_digest(t) for t in attribute.tensors]
    for field in ("g", "graphs", "t", "tensors"):
        attribute.ClearField(field)
    return _sha(attribute.SerializeToString(deterministic=True), *graphs, *tensors)


def _graph_digest(graph: Any, outer: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """The canonical form of a graph as a Merkle digest, and its outputs' digests (by position): a graph input is
    named by its position, a weight by its content, every other value by the node computing it (op, domain,
    attributes, its inputs' digests) and its position among that node's outputs. Node and value names, doc
    strings, the graph's name and the order of independent nodes leave it unchanged; ops, attributes, weights
    and wiring do not."""
    digests = dict(outer or {})
    digests[""] = "absent"  # an optional input left out
    weights = {t.name for t in graph.initializer}
    for position, value in enumerate(value for value in graph.input if value.name not in weights):
        digests[value.name] = _sha("input", str(position), _type_digest(value.type))
    for tensor in graph.initializer:
        digests[tensor.name] = _tensor_digest(tensor)
    for sparse in graph.sparse_initializer:
        digests[sparse.values.name] = _sha("sparse", _tensor_digest(sparse.values), _tensor_digest(sparse.indices))
    waiting, stalled = deque(graph.node), 0
    while waiting:  # topological order, whatever order the file lists the nodes in (one pass when sorted)
        node = waiting.popleft()
        if not all(name in digests for name in node.input):
            waiting.append(node)
            stalled += 1
            if stalled > len(waiting):
                missing = sorted({name for n in waiting for name in n.input if name not in digests})
                raise CkdError(f"teacher.model: the graph reads values no node computes ({', '.join(missing[:5])})")
            continue
        stalled = 0
        attributes = sorted(_attribute_digest(a, digests) for a in node.attribute)
        computed = _sha("node", node.domain, node.op_type, *[digests[name] for name in node.input], *attributes)
        for index, name in enumerate(node.output):
            if name:
                digests[name] = _sha(computed, str(index))
    outputs = [_sha("output", digests[v.name], _type_digest(v.type)) for v in graph.output]
    return _sha("graph", *outputs), outputs


def graph_sha256(path: Path) -> str:
    """SHA-256 of what the model computes: the canonical form of its graph (`_graph_digest`: weights, operators
    and wiring in topological order, values named by position) and its opsets, not the file's bytes, so the
    same model saved again (renamed nodes or values, another graph name, doc strings, producer, external data)
    keeps its identity and is never paid for twice."""
    import onnx

    model = onnx.load(str(path), load_external_data=True)
    graph, _ = _graph_digest(model.graph)
    opsets = [f"{domain}:{version}" for domain, version in sorted((o.domain, o.version) for o in model.opset_import)]
    functions = sorted(_sha(f.SerializeToString(deterministic=True)) for f in model.functions)
    return _sha(graph, *opsets, *functions)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class OnnxTeacherConfig(TeacherSettings):
    """`teacher.kind: onnx`: an ONNX file (`teacher.model`) run by ONNX Runtime."""

    kind: Literal["onnx"] = "onnx"

    def files(self) -> tuple[str, ...]:
        return (self.model,)


@TEACHERS.register("onnx")
class OnnxFileTeacher(DeclaredModel):
    """The declared input decides the layout: each raw sample is reshaped to it and cast to its dtype."""

    concurrency = 1
    config_model = OnnxTeacherConfig

    @classmethod
    def from_config(cls, config: OnnxTeacherConfig) -> OnnxFileTeacher:
        return cls(config.model, config.output)

    def __init__(self, model: str, output: str | None = None) -> None:
        path = Path(model)
        if not path.is_file():
            raise CkdError(f"{path}: teacher model not found (teacher.model)")
        try:
            self.session = onnx_session(path)
        except Exception as error:
            raise CkdError(f"{path}: not a loadable ONNX model ({str(error).splitlines()[0]})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise TeacherError(f"{path}: teacher must have exactly one input, has {len(inputs)}")
        if inputs[0].type not in _ONNX_DTYPES:
            raise TeacherError(f"{path}: teacher input type {inputs[0].type} is not supported")
        self.input_name, self.input_dtype = inputs[0].name, _ONNX_DTYPES[inputs[0].type]
        self.sample_dims = list(inputs[0].shape[1:])
        self.output_name = self._pick_output(path, output)
        out_shape = next(o.shape for o in self.session.get_outputs() if o.name == self.output_name)
        self.num_classes = out_shape[1] if len(out_shape) == 2 and isinstance(out_shape[1], int) else None
        declared = self.session.get_modelmeta().custom_metadata_map.get(CLASS_NAMES_KEY)
        self.class_names = parse_class_names(declared, f"{path}: metadata")
        # what it computes and which output (by position: a renamed output is the same teacher)
        position = [o.name for o in self.session.get_outputs()].index(self.output_name)
        self.identity = f"onnx:{graph_sha256(path)[:24]}:{position}"
        self.description = f"ONNX file {path}, output {self.output_name}"
        self.path, self.where = path, str(path)

    def _pick_output(self, path: Path, output: str | None) -> str:
        """The output holding the scores: a float tensor, ONNX Runtime says so before any call (a sequence of
        maps, skl2onnx's ZipMap, is refused here, not paid for and quarantined)."""
        outputs = self.session.get_outputs()
        maps = [o for o in outputs if "map(" in o.type]
        if output is not None:
            chosen = next((o for o in outputs if o.name == output), None)
            if chosen is None:
                raise TeacherError(
                    f"teacher.output: {output!r} is not an output of {path}; outputs: "
                    f"{', '.join(o.name for o in outputs)}"
                )
            if chosen.type not in _FLOAT_OUTPUTS:
                advice = ZIPMAP_ADVICE if chosen in maps else "name an output of floats"
                raise TeacherError(
                    f"teacher.output: {output!r} of {path} is {chosen.type}, not a float tensor [batch, classes]; "
                    f"{advice}"
                )
            return output
        candidates = [o.name for o in outputs if o.type in _FLOAT_OUTPUTS and len(o.shape) == 2]
        if len(candidates) > 1:
            raise TeacherError(
                f"teacher.output: {path} has {len(candidates)} float [batch, classes] outputs "
                f"({', '.join(candidates)}); name the one holding the scores"
            )
        if not candidates:
            advice = ZIPMAP_ADVICE if maps else "name one with teacher.output"
            raise TeacherError(f"{path}: no float output shaped [batch, classes]; {advice}")
        return str(candidates[0])

    def predict(self, x: np.ndarray) -> np.ndarray:
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument  # loaded with the session

        batch = self._batch(x)
        try:
            (scores,) = self.session.run([self.output_name], {self.input_name: batch})
        except InvalidArgument as error:  # rejected before it ran (a shape or type it does not take): nothing computed
            raise TeacherRefused(
                f"ONNX Runtime rejected the input {list(batch.shape)}: {str(error).splitlines()[0][:300]}"
            ) from None
        return np.asarray(scores)
