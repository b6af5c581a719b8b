"""A text student that ships: the export stage names its classes with the LLM teacher's label words, the bundle
predicts names with ONNX Runtime and `tokenizers` alone (no torch, no transformers), and the same graph (input:
token ids) is laid out for Triton, KServe and MLServer with its tokenizer beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ckd.config import section_from_dict
from ckd.errors import ConfigError
from tests.helpers.servers import KServeTeacher, MLServerBundle
from tests.helpers.text import LABEL_WORDS

NAME = "news_student"
DATA_LABELS = ["1", "2", "3", "4"]  # the AG News CSV's label column
TEXTS = [
    "Stocks rallied after the merger as investors cheered record bank profit.",
    "The striker scored twice and the coach praised the league leaders.",
    "",
    "NASA's new telescope and a genome study lead this week's research news " * 30,  # truncated
    "Ünïcödé façade — naïve café 東京",
]


def checkpoint(class_names=DATA_LABELS):
    from ckd.students import build_student
    from ckd.students.checkpoint import StudentCheckpoint

    torch.manual_seed(1)
    head = build_student("mlp", (384,), 4, np.zeros(384, np.float32), np.full(384, 0.05, np.float32), {"hidden": [8]})
    return StudentCheckpoint(
        state_dict={k: v.clone() for k, v in head.state_dict().items()},
        arch="mlp",
        arch_args={"hidden": [8]},
        sample_shape=[384],
        num_classes=4,
        class_names=list(class_names),
        method="kd",
        chosen={"lr": 0.003},
        teacher_samples=40,
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The export stage's text branch, as `dvc repro` runs it with an LLM teacher's label words."""
    from ckd.stages.export import export

    root = tmp_path_factory.mktemp("textship")
    accounting = {"budget": 40, "calls_spent_total": 40}  # the query stage's figures that reach the metadata
    result = export(
        section_from_dict("export", {"name": NAME}),
        checkpoint(),
        accounting,
        None,
        None,
        root / "student.onnx",
        root / "student.int8.onnx",
        root / "serving",
        text=True,
        label_words=list(LABEL_WORDS),
    )
    return root, result


def reference_logits(texts):
    """The training path: encoder embeddings through the PyTorch head."""
    from ckd.students.text_encoder import embed_texts

    with torch.no_grad():
        return checkpoint().model()(torch.as_tensor(embed_texts(texts, progress=False))).numpy()


def test_label_words_are_the_class_names_everywhere(exported):
    from ckd.export import read_metadata

    root, result = exported
    serving = root / "serving"
    description = json.loads((serving / "bundle.json").read_text())
    assert description["class_names"] == list(LABEL_WORDS) and description["data_labels"] == DATA_LABELS
    for model in (root / "student.onnx", serving / "student.onnx", serving / "triton" / NAME / "1" / "model.onnx"):
        assert json.loads(read_metadata(model)["class_names"]) == list(LABEL_WORDS), model
    assert (serving / "triton" / NAME / "labels.txt").read_text().split("\n")[:-1] == list(LABEL_WORDS)
    assert result["served_name"] == NAME and result["outputs"] == ["logits", "probabilities"]


def test_without_label_words_the_data_labels_stay_and_a_wrong_count_is_one_line():
    from ckd.stages.export import class_names

    assert class_names(checkpoint(), None) == DATA_LABELS
    with pytest.raises(ConfigError) as error:
        class_names(checkpoint(), ["World", "Sports", "Business"])
    assert str(error.value).startswith("teacher.label_words:") and "got 3" in str(error.value)


def test_predict_returns_label_words_and_probabilities(exported):
    from ckd.text_bundle import TextBundle

    bundle = TextBundle(exported[0] / "serving")
    expected = reference_logits(TEXTS)
    assert bundle.predict(TEXTS) == [LABEL_WORDS[k] for k in expected.argmax(1)]
    proba = bundle.predict_proba(TEXTS)
    soft = np.exp(expected - expected.max(1, keepdims=True))
    np.testing.assert_allclose(proba, soft / soft.sum(1, keepdims=True), atol=1e-5)
    assert proba.shape == (len(TEXTS), 4) and np.allclose(proba.sum(1), 1)
    assert bundle.predict([]) == [] and bundle.predict_proba([]).shape == (0, 4)


def test_text_bundle_imports_neither_torch_nor_transformers(exported):
    """A fresh interpreter imports the loader and predicts; torch and transformers never load."""
    from ckd.text_bundle import TextBundle

    program = (
        "import json, sys\n"
        "from ckd.text_bundle import TextBundle\n"
        f"bundle = TextBundle({str(exported[0] / 'serving')!r}, threads=1)\n"
        f"names = bundle.predict({TEXTS!r})\n"
        "proba = bundle.predict_proba(['Shares fell.']).tolist()\n"
        "print(json.dumps({'names': names, 'proba': proba,"
        " 'loaded': sorted(m for m in ('torch', 'transformers') if m in sys.modules)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert out["names"] == TextBundle(exported[0] / "serving").predict(TEXTS)
    assert len(out["proba"][0]) == 4 and abs(sum(out["proba"][0]) - 1) < 1e-5


def test_the_text_model_is_laid_out_for_triton_kserve_and_mlserver(exported):
    """Token ids in, as input.json says; the served graph with the tokenizer beside it gives the bundle's logits."""
    import onnxruntime as ort
    import yaml
    from google.protobuf import text_format
    from tokenizers import Tokenizer
    from tritonclient.grpc import model_config_pb2

    from ckd.text_bundle import TextBundle

    serving = exported[0] / "serving"
    model_dir = serving / "triton" / NAME
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == NAME and config.platform == "onnxruntime_onnx"
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("input_ids", model_config_pb2.TYPE_INT64, [-1]),
        ("attention_mask", model_config_pb2.TYPE_INT64, [-1]),
    ]
    assert [o.name for o in config.output] == ["logits", "probabilities"]
    tokenizer_bytes = (serving / "tokenizer.json").read_bytes()
    for folder in (model_dir, serving / "mlserver" / NAME):
        assert (folder / "tokenizer.json").read_bytes() == tokenizer_bytes, folder
    settings = json.loads((serving / "mlserver" / NAME / "model-settings.json").read_text())
    assert settings["inputs"] == [
        {"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]},
        {"name": "attention_mask", "datatype": "INT64", "shape": [-1, -1]},
    ]
    assert (serving / "mlserver" / NAME / settings["parameters"]["uri"]).resolve() == (model_dir / "1" / "model.onnx")
    manifest = yaml.safe_load((serving / "kserve" / "inferenceservice.yaml").read_text())
    assert manifest["spec"]["predictor"]["model"]["modelFormat"]["name"] == "onnx"
    described = json.loads((serving / "input.json").read_text())
    assert described["inputs"] == ["input_ids", "attention_mask"] and "token ids, not text" in described["values"]
    assert described["tokenizer"] == "tokenizer.json" and described["max_tokens"] == 256

    # A client holding only the Triton folder: its tokenizer, its model.onnx.
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    encodings = tokenizer.encode_batch(TEXTS)
    feeds = {
        "input_ids": np.asarray([e.ids for e in encodings], np.int64),
        "attention_mask": np.asarray([e.attention_mask for e in encodings], np.int64),
    }
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(["logits", "probabilities"], feeds)
    np.testing.assert_allclose(logits, TextBundle(serving).logits(TEXTS), atol=1e-4)
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5)


SERVERS = {  # each started on the bundle as its server documents it
    "kserve": lambda serving: KServeTeacher(serving / "triton" / NAME / "1" / "model.onnx", NAME),
    "mlserver": lambda serving: MLServerBundle(serving / "mlserver"),  # finds mlserver/<name>/
}


@pytest.mark.server
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_model_servers_serve_the_text_model_on_token_ids(exported, server):
    """KServe's and MLServer's model servers on 127.0.0.1: token ids from the tokenizer beside the model give the
    bundle's logits; a request without `attention_mask`, or with float ids, is a 4xx saying what is expected."""
    import httpx

    from ckd.text_bundle import TextBundle
    from tests.helpers.servers import mlserver_python, server_python

    python = {"kserve": server_python, "mlserver": mlserver_python}[server]()
    if not python.exists() and not os.environ.get("CI"):
        pytest.skip(f"{python} is missing: `make install` builds the {server} environment")
    serving = exported[0] / "serving"
    bundle = TextBundle(serving)
    ids, mask = bundle.tokenize(TEXTS)

    def tensor(name, array, datatype="INT64"):
        return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": array.reshape(-1).tolist()}

    def infer(*inputs):
        return httpx.post(f"{url}/v2/models/{NAME}/infer", json={"inputs": list(inputs)}, timeout=60)

    with SERVERS[server](serving) as url:
        metadata = httpx.get(f"{url}/v2/models/{NAME}", timeout=10).json()
        assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
            ("input_ids", "INT64"),
            ("attention_mask", "INT64"),
        ]
        response = infer(tensor("input_ids", ids), tensor("attention_mask", mask))
        assert response.status_code == 200, response.text
        out = {o["name"]: np.asarray(o["data"], np.float32).reshape(o["shape"]) for o in response.json()["outputs"]}
        np.testing.assert_allclose(out["logits"], bundle.logits(TEXTS), atol=1e-4)
        assert [LABEL_WORDS[k] for k in out["probabilities"].argmax(1)] == bundle.predict(TEXTS)
        refused = infer(tensor("input_ids", ids))
        assert 400 <= refused.status_code < 500 and "attention_mask" in refused.text, refused.text
        floats = infer(tensor("input_ids", ids.astype(np.float32), "FP32"), tensor("attention_mask", mask))
        assert 400 <= floats.status_code < 500 and "INT64" in floats.text, floats.text
