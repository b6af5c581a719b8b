"""A teacher given as an ONNX file, run by ONNX Runtime (CUDA where usable, else CPU)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np

from ckd.errors import CkdError, TeacherError
from ckd.runtime import onnx_session
from ckd.teachers.base import (
    CLASS_NAMES_KEY,
    TEACHERS,
    TeacherRefused,
    TeacherSettings,
    check_declared_fit,
    parse_class_names,
)

_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")


def graph_sha256(path: Path) -> str:
    """SHA-256 of what the model computes: its graph (nodes and weights) and opsets, not the file's bytes,
    so the same model saved again (another producer, other metadata, external data) keeps its identity."""
    import onnx

    model = onnx.load(str(path), load_external_data=True)
    digest = hashlib.sha256(model.graph.SerializeToString(deterministic=True))
    for opset in sorted((o.domain, o.version) for o in model.opset_import):
        digest.update(f"|{opset[0]}:{opset[1]}".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class OnnxTeacherConfig(TeacherSettings):
    """`teacher.kind: onnx`: an ONNX file (`teacher.model`) run by ONNX Runtime."""

    kind: Literal["onnx"] = "onnx"

    def files(self) -> tuple[str, ...]:
        return (self.model,)


@TEACHERS.register("onnx")
class OnnxFileTeacher:
    """The declared input decides the layout: each raw sample is reshaped to it and cast to its dtype."""

    concurrency = 1
    config_model = OnnxTeacherConfig

    @classmethod
    def from_config(cls, config: OnnxTeacherConfig) -> OnnxFileTeacher:
        return cls(config.model, config.output)

    def __init__(self, model: str, output: str | None = None):
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
        self.input = inputs[0]
        if self.input.type not in _ONNX_DTYPES:
            raise TeacherError(f"{path}: teacher input type {self.input.type} is not supported")
        self.input_dtype = _ONNX_DTYPES[self.input.type]
        self.sample_dims = list(self.input.shape[1:])
        self.output_name = self._pick_output(path, output)
        out_shape = next(o.shape for o in self.session.get_outputs() if o.name == self.output_name)
        self.num_classes = out_shape[1] if len(out_shape) == 2 and isinstance(out_shape[1], int) else None
        declared = self.session.get_modelmeta().custom_metadata_map.get(CLASS_NAMES_KEY)
        self.class_names = parse_class_names(declared, f"{path}: metadata")
        self.identity = f"onnx:{graph_sha256(path)[:24]}:{self.output_name}"
        self.legacy_identity = f"onnx:{file_sha256(path)[:16]}:{self.output_name}"  # before the store
        self.description = f"ONNX file {path}, output {self.output_name}"
        self.path = path

    def _pick_output(self, path: Path, output: str | None) -> str:
        outputs = self.session.get_outputs()
        if output is not None:
            names = [o.name for o in outputs]
            if output not in names:
                raise TeacherError(
                    f"teacher.output: {output!r} is not an output of {path}; outputs: {', '.join(names)}"
                )
            return output
        candidates = [o.name for o in outputs if o.type in _FLOAT_OUTPUTS and len(o.shape) == 2]
        if len(candidates) > 1:
            raise TeacherError(
                f"teacher.output: {path} has {len(candidates)} float [batch, classes] outputs "
                f"({', '.join(candidates)}); name the one holding the scores"
            )
        if not candidates:
            raise TeacherError(f"{path}: no float output shaped [batch, classes]; name one with teacher.output")
        return candidates[0]

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        check_declared_fit(
            str(self.path),
            self.input.name,
            self.sample_dims,
            self.output_name,
            self.num_classes,
            sample_shape,
            num_classes,
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument  # loaded with the session

        batch = np.ascontiguousarray(x.reshape(len(x), *self.sample_dims).astype(self.input_dtype))
        try:
            (scores,) = self.session.run([self.output_name], {self.input.name: batch})
        except InvalidArgument as error:  # rejected before it ran (a shape or type it does not take): nothing computed
            raise TeacherRefused(
                f"ONNX Runtime rejected the input {list(batch.shape)}: {str(error).splitlines()[0][:300]}"
            ) from None
        return np.asarray(scores)
