"""An ONNX Runtime model for MLServer 1.7 (which ships no ONNX runtime of its own). `export` copies this
file beside `model-settings.json`, whose `implementation` names it; MLServer imports it from there.

    mlserver start models/serving/mlserver

A request must carry each of the graph's inputs by name (one for an image or table student; `input_ids` and
`attention_mask` for a text student); a name, datatype or shape that does not fit is answered 400 with the reason.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}


class OnnxModel(MLModel):
    async def load(self) -> bool:
        self.session = ort.InferenceSession(await get_model_uri(self._settings), providers=["CPUExecutionProvider"])
        self.graph_inputs = {i.name: i for i in self.session.get_inputs()}  # a text model: input_ids, attention_mask
        self.output_names = [o.name for o in self.session.get_outputs()]
        return True

    def _check(self, name: str, array: np.ndarray) -> None:
        graph_input = self.graph_inputs.get(name)
        if graph_input is None:
            raise MLServerError(f"input {name!r} is not the model's; it takes {sorted(self.graph_inputs)}", 400)
        expected = [d if isinstance(d, int) else -1 for d in graph_input.shape]
        fits = len(array.shape) == len(expected) and all(e in (-1, s) for e, s in zip(expected, array.shape))
        if not fits:
            raise MLServerError(
                f"input {name!r} with shape {list(array.shape)} does not fit the model's input "
                f"{graph_input.name!r} of shape {expected} (-1: any)",
                status_code=400,
            )

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        names = sorted(i.name for i in payload.inputs)
        if names != sorted(self.graph_inputs):
            raise MLServerError(f"expected the inputs {sorted(self.graph_inputs)}, got {names}", 400)
        feeds = {}
        for request_input in payload.inputs:
            array = NumpyCodec.decode_input(request_input)
            self._check(request_input.name, array)
            graph_input = self.graph_inputs[request_input.name]
            if graph_input.type.startswith("tensor(int") and request_input.datatype.startswith("FP"):
                raise MLServerError(  # token ids sent as floats: a client's mistake, not a value to round
                    f"input {request_input.name!r} has datatype {request_input.datatype}; the model takes INT64", 400
                )
            feeds[graph_input.name] = array.astype(_NUMPY.get(graph_input.type, np.float32), copy=False)
        wanted = [o.name for o in payload.outputs] if payload.outputs else self.output_names
        unknown = [n for n in wanted if n not in self.output_names]
        if unknown:
            raise MLServerError(f"unknown output(s) {unknown}; the model has {self.output_names}", 400)
        values = self.session.run(wanted, feeds)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(n, v) for n, v in zip(wanted, values)],
        )
