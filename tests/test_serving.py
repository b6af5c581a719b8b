"""The serving bundle: Triton's config read with Triton's own protobuf schema, KServe and MLServer files,
and the in-graph `probabilities` output."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import yaml
from google.protobuf import text_format

from ckd.export import INPUT_NAME, OUTPUT_NAME
from ckd.serving import PROBABILITIES_NAME, graph_io, input_scale, write_bundle
from tests.student_fixtures import exported_student


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_bundle_matches_the_graph(tmp_path, arch):
    from tritonclient.grpc import model_config_pb2

    onnx_path = tmp_path / "student.onnx"
    _, dataset, _, test_ids = exported_student(arch, onnx_path)
    scale = input_scale(dataset.x, INPUT_NAME)
    info = write_bundle(
        onnx_path,
        tmp_path / "serving",
        "digits_student",
        list(dataset.class_names),
        64,
        "s3://bucket/serving/triton",
        scale=scale,
    )
    assert info["outputs"] == [OUTPUT_NAME, PROBABILITIES_NAME]

    model_dir = tmp_path / "serving" / "triton" / "digits_student"
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == "digits_student" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64 and config.HasField("dynamic_batching")
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        (INPUT_NAME, model_config_pb2.TYPE_FP32, [8, 8])
    ]
    assert [(o.name, list(o.dims), o.label_filename) for o in config.output] == [
        (OUTPUT_NAME, [10], "labels.txt"),
        (PROBABILITIES_NAME, [10], "labels.txt"),
    ]
    assert (model_dir / "labels.txt").read_text().split() == list(dataset.class_names)
    assert (model_dir / "1" / "model.onnx").read_bytes() == onnx_path.read_bytes()

    service = yaml.safe_load((tmp_path / "serving" / "kserve" / "inferenceservice.yaml").read_text())
    assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
    assert service["metadata"]["name"] == "digits-student"  # a DNS-1123 label: no underscores
    model = service["spec"]["predictor"]["model"]  # KServe's documented form: predictor.model.modelFormat
    assert model["modelFormat"] == {"name": "onnx"} and "onnx" not in service["spec"]["predictor"]
    assert model == {**model, "protocolVersion": "v2", "storageUri": "s3://bucket/serving/triton"}

    mlserver_dir = tmp_path / "serving" / "mlserver" / "digits_student"  # the folder named as the model
    settings = json.loads((mlserver_dir / "model-settings.json").read_text())
    assert settings["name"] == mlserver_dir.name
    assert settings["parameters"]["extra"]["input_scale"] == scale
    assert (mlserver_dir / settings["parameters"]["uri"]).resolve() == (model_dir / "1" / "model.onnx").resolve()
    assert settings["inputs"] == [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 8, 8]}]
    assert (mlserver_dir / (settings["implementation"].split(".")[0] + ".py")).is_file()
    assert json.loads((mlserver_dir.parent / "settings.json").read_text())["load_models_at_startup"] is True
    # the input's expected scale: raw values (0..16 for digits), the scaling is inside the graph
    written = json.loads((tmp_path / "serving" / "input.json").read_text())
    assert written == scale and (written["observed_min"], written["observed_max"]) == (0.0, 16.0)
    assert "raw" in written["values"] and "(x - mean) / std" in written["scaling_in_graph"]


def test_probabilities_output_is_the_softmax_of_the_logits(tmp_path):
    onnx_path = tmp_path / "student.onnx"
    _, dataset, _, test_ids = exported_student("mlp", onnx_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits, probabilities = session.run([OUTPUT_NAME, PROBABILITIES_NAME], {INPUT_NAME: dataset.x[test_ids[:50]]})
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert np.abs(probabilities - expected).max() < 1e-6
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5)
    inputs, outputs = graph_io(onnx_path)
    assert [o.shape for o in outputs] == [(-1, 10), (-1, 10)] and inputs[0].shape == (-1, 8, 8)


def test_without_probabilities_the_graph_has_logits_only(tmp_path):
    onnx_path = tmp_path / "student.onnx"
    exported_student("mlp", onnx_path, probabilities=False)
    assert [o.name for o in graph_io(onnx_path)[1]] == [OUTPUT_NAME]


def test_rewriting_the_bundle_drops_a_renamed_model_and_keeps_other_files(tmp_path):
    onnx_path = tmp_path / "student.onnx"
    exported_student("mlp", onnx_path, probabilities=False)
    out = tmp_path / "serving"
    write_bundle(onnx_path, out, "old_name", [str(c) for c in range(10)], 8, "pvc://x")
    (out / "notes.txt").write_text("mine")
    write_bundle(onnx_path, out, "new_name", [str(c) for c in range(10)], 8, "pvc://x")
    assert sorted(p.name for p in (out / "triton").iterdir()) == ["new_name"]
    assert (out / "notes.txt").read_text() == "mine"
