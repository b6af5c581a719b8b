"""The student's bundle on real model servers on 127.0.0.1, queried over the Open Inference Protocol v2 and
checked against ONNX Runtime; a request of the wrong shape gets a 4xx that says what was expected."""

import os

import httpx
import numpy as np
import pytest

from ckd.export import INPUT_NAME, OUTPUT_NAME
from ckd.serving import PROBABILITIES_NAME, write_bundle
from ckd.validate import onnx_logits
from tests.helpers.servers import KServeTeacher, MLServerBundle, mlserver_python, server_python
from tests.student_fixtures import exported_student

pytestmark = pytest.mark.server

NAME = "ckd_student"
SERVERS = {
    "kserve": (server_python, lambda bundle: KServeTeacher(bundle / "triton" / NAME / "1" / "model.onnx", NAME)),
    "mlserver": (mlserver_python, lambda bundle: MLServerBundle(bundle / "mlserver")),  # finds mlserver/<name>/
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    _, dataset, _, test_ids = exported_student("mlp", root / "student.onnx")
    write_bundle(root / "student.onnx", root / "serving", NAME, list(dataset.class_names), 256, "pvc://x")
    return root / "serving", dataset.x[test_ids[:64]]


@pytest.fixture(scope="module", params=sorted(SERVERS))
def served(request, bundle):
    python, make = SERVERS[request.param]
    if not python().exists() and not os.environ.get("CI"):
        pytest.skip(f"{python()} is missing: `make install` builds the {request.param} environment")
    folder, x = bundle
    with make(folder) as url:
        yield url, folder, x


def infer(url: str, x: np.ndarray, shape=None, outputs=None) -> httpx.Response:
    body = {
        "inputs": [
            {"name": INPUT_NAME, "datatype": "FP32", "shape": list(shape or x.shape), "data": x.reshape(-1).tolist()}
        ]
    }
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return httpx.post(f"{url}/v2/models/{NAME}/infer", json=body, timeout=30)


def tensor(response: httpx.Response, name: str) -> np.ndarray:
    out = next(o for o in response.json()["outputs"] if o["name"] == name)
    return np.asarray(out["data"], np.float32).reshape(out["shape"])


def test_served_answers_match_onnx_runtime(served):
    url, folder, x = served
    metadata = httpx.get(f"{url}/v2/models/{NAME}", timeout=10).json()
    assert metadata["inputs"][0]["name"] == INPUT_NAME and metadata["inputs"][0]["shape"][1:] == [8, 8]
    assert {o["name"] for o in metadata["outputs"]} == {OUTPUT_NAME, PROBABILITIES_NAME}
    reference = onnx_logits(folder / "triton" / NAME / "1" / "model.onnx", x)
    for batch in (x[:1], x):
        response = infer(url, batch)
        assert response.status_code == 200, response.text
        logits = tensor(response, OUTPUT_NAME)
        assert np.abs(logits - reference[: len(batch)]).max() <= 1e-5
        assert (logits.argmax(1) == reference[: len(batch)].argmax(1)).all()
    probabilities = tensor(infer(url, x, outputs=[PROBABILITIES_NAME]), PROBABILITIES_NAME)
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5) and (probabilities.argmax(1) == reference.argmax(1)).all()


@pytest.mark.parametrize("shape", [[4, 64], [4, 8, 9], [4, 1, 8, 8]])
def test_wrong_input_shape_is_a_4xx_with_the_expected_shape(served, shape):
    url, _, x = served
    data = np.zeros(int(np.prod(shape)), np.float32)
    response = infer(url, data, shape=shape)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    message = response.text
    assert INPUT_NAME in message and str(shape) in message and "[-1, 8, 8]" in message
