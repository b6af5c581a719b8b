"""Serve an ONNX teacher with KServe's Python model server (Open Inference Protocol v2 over REST),
bound to 127.0.0.1 only. Runs in the server's own environment (`make` builds `.venv-server`):

    .venv-server/bin/python serving/kserve_onnx_teacher.py --model models/teacher.onnx --name teacher --port 8080

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

DATATYPE = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(uint8)": "UINT8", "tensor(int64)": "INT64"}


class OnnxTeacher(Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.load()

    def load(self) -> bool:
        self.ready = True
        return True

    @staticmethod
    def _describe(arg) -> dict:
        return {"name": arg.name, "datatype": DATATYPE.get(arg.type, "FP32"),
                "shape": [d if isinstance(d, int) else -1 for d in arg.shape]}

    def get_input_types(self):
        return [self._describe(self.input)]

    def get_output_types(self):
        return [self._describe(o) for o in self.session.get_outputs()]

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy().astype(np.float32)
        wanted = payload.request_outputs[0].name if payload.request_outputs else None
        outputs = []
        for meta, value in zip(self.session.get_outputs(), self.session.run(None, {self.input.name: x})):
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
    ModelServer(http_port=args.port, enable_grpc=False, workers=1).start([OnnxTeacher(args.name, args.model)])


if __name__ == "__main__":
    main()
