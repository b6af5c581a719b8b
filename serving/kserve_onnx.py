"""Serve an ONNX model (a teacher, or the student's bundle) with KServe's Python model server (Open
Inference Protocol v2 over REST), bound to 127.0.0.1 only; a text student takes its token ids
(`input_ids`, `attention_mask`). Runs in the server's own environment (`make`
builds `.venv-server`):

    .venv-server/bin/python serving/kserve_onnx.py \
        --model models/serving/triton/ckd_student/1/model.onnx --name ckd_student --port 8080
    .venv-server/bin/python serving/kserve_onnx.py --model models/standin/teacher.onnx --name teacher

KServe's REST server binds 0.0.0.0; this launcher narrows it to loopback before the server starts.
"""

from __future__ import annotations

import argparse
import uuid

import numpy as np
import onnxruntime as ort
import uvicorn

_UvicornConfig = uvicorn.Config


class _LoopbackConfig(_UvicornConfig):
    def __init__(self, *args, **kwargs):
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


uvicorn.Config = _LoopbackConfig  # KServe's RESTServer builds uvicorn.Config(host="0.0.0.0", ...)

from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer  # noqa: E402
from kserve.errors import InvalidInput  # noqa: E402

DATATYPE = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(uint8)": "UINT8", "tensor(int64)": "INT64"}


_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int64)": np.int64,
}
_ACCEPTED = {"FP32": ("FP32", "FP64", "FP16"), "INT64": ("INT64", "INT32")}  # request datatypes cast losslessly


class OnnxModel(Model):
    """Every graph input by name: one for an image or table model, `input_ids` and `attention_mask` (token ids)
    for a text student."""

    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.load()

    def load(self) -> bool:
        self.ready = True
        return True

    @staticmethod
    def _describe(arg) -> dict:
        return {
            "name": arg.name,
            "datatype": DATATYPE.get(arg.type, "FP32"),
            "shape": [d if isinstance(d, int) else -1 for d in arg.shape],
        }

    def get_input_types(self):
        return [self._describe(i) for i in self.inputs.values()]

    def get_output_types(self):
        return [self._describe(o) for o in self.session.get_outputs()]

    def _check(self, payload: InferRequest) -> None:
        """A request that cannot fit the graph is the client's error: 400 with the reason, never a 500."""
        if len(payload.inputs) != len(self.inputs):
            raise InvalidInput(
                f"expected {len(self.inputs)} input{'s' if len(self.inputs) > 1 else ''} "
                f"({', '.join(map(repr, self.inputs))}), got {len(payload.inputs)}"
            )
        if len({given.name for given in payload.inputs}) != len(payload.inputs):
            raise InvalidInput(f"an input is given twice; the model takes {list(self.inputs)} once each")
        for given in payload.inputs:
            # a one-input graph: the name is checked with the shape (one message says both)
            graph_input = self.inputs.get(given.name) or (
                next(iter(self.inputs.values())) if len(self.inputs) == 1 else None
            )
            if graph_input is None:
                raise InvalidInput(f"input {given.name!r} is not the model's; it takes {list(self.inputs)}")
            expected = [d if isinstance(d, int) else -1 for d in graph_input.shape]
            shape = [int(d) for d in given.shape]
            fits = len(shape) == len(expected) and all(e in (-1, s) for e, s in zip(expected, shape))
            if given.name != graph_input.name or not fits:
                raise InvalidInput(
                    f"input {given.name!r} with shape {shape} does not fit the model's input "
                    f"{graph_input.name!r} of shape {expected} (-1: any)"
                )
            takes = DATATYPE.get(graph_input.type, "FP32")
            if given.datatype not in _ACCEPTED.get(takes, (takes,)):
                raise InvalidInput(f"input {given.name!r} has datatype {given.datatype}; the model takes {takes}")
        names = [o.name for o in self.session.get_outputs()]
        unknown = [o.name for o in payload.request_outputs or [] if o.name not in names]
        if unknown:
            raise InvalidInput(f"unknown output(s) {unknown}; the model has {names}")

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        self._check(payload)
        feeds = {}
        for given in payload.inputs:
            try:
                feeds[given.name] = given.as_numpy().astype(_NUMPY.get(self.inputs[given.name].type, np.float32))
            except ValueError as error:  # the data's length does not match the declared shape
                raise InvalidInput(f"input {given.name!r}: {error}") from None
        wanted = payload.request_outputs[0].name if payload.request_outputs else None
        outputs = []
        for meta, value in zip(self.session.get_outputs(), self.session.run(None, feeds)):
            if wanted is None or meta.name == wanted:
                out = InferOutput(name=meta.name, shape=list(value.shape), datatype="FP32")
                out.set_data_from_numpy(value.astype(np.float32), binary_data=False)
                outputs.append(out)
        return InferResponse(model_name=self.name, infer_outputs=outputs, response_id=payload.id or str(uuid.uuid4()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", default="teacher")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    ModelServer(http_port=args.port, enable_grpc=False, workers=1).start([OnnxModel(args.name, args.model)])


if __name__ == "__main__":
    main()
