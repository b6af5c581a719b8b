"""A second runtime: OpenVINO reads the exported student and agrees with ONNX Runtime (openvino is the
`openvino` extra, which `make` installs, so this test runs in `make test`)."""

import numpy as np
import pytest

from ckd.latency import openvino_logits
from ckd.validate import onnx_logits
from tests.student_fixtures import exported_student


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_openvino_matches_onnx_runtime(tmp_path, arch):
    onnx_path = tmp_path / "student.onnx"
    _, dataset, _, test_ids = exported_student(arch, onnx_path)
    x = dataset.x[test_ids]
    reference = onnx_logits(onnx_path, x)
    ov = openvino_logits(onnx_path, x)
    assert ov.shape == reference.shape
    assert np.abs(ov - reference).max() <= 1e-4
    assert (ov.argmax(1) == reference.argmax(1)).all()
