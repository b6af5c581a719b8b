"""int8 by static QDQ quantisation: calibrated only on pool inputs never sent to the teacher, close to fp32
for both student architectures, and the gate on the accuracy drop."""

import numpy as np
import onnx
import pytest

from ckd.errors import CkdError
from ckd.quantize import calibration_inputs, int8_metrics, quantize_int8
from ckd.validate import check_gates, onnx_logits
from tests.student_fixtures import exported_student


def test_calibration_uses_only_inputs_never_sent():
    pool_ids = np.arange(100, 110)
    pool_x = np.arange(10, dtype=np.float32)[:, None] * np.ones((10, 3), np.float32)
    asked = np.array([100, 103, 105, 109])
    chosen = calibration_inputs(pool_ids, pool_x, asked, count=100, seed=0)
    assert sorted(chosen[:, 0].astype(int).tolist()) == [1, 2, 4, 6, 7, 8]
    assert len(calibration_inputs(pool_ids, pool_x, asked, count=3, seed=0)) == 3
    with pytest.raises(CkdError, match="export.int8_calibration_samples"):
        calibration_inputs(pool_ids, pool_x, pool_ids, count=3, seed=0)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_int8_is_qdq_and_close_to_fp32(tmp_path, arch):
    fp32_path = tmp_path / "student.onnx"
    _, dataset, pool_ids, test_ids = exported_student(arch, fp32_path)
    asked = pool_ids[:100]
    calibration = calibration_inputs(pool_ids, dataset.x[pool_ids], asked, 256, seed=0)
    int8_path = quantize_int8(fp32_path, tmp_path / "student.int8.onnx", calibration)
    ops = {node.op_type for node in onnx.load(str(int8_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in onnx.load(str(int8_path)).graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8_weights  # the weights themselves are stored as int8
    fp32 = onnx_logits(fp32_path, dataset.x[test_ids])
    figures = int8_metrics(fp32, onnx_logits(int8_path, dataset.x[test_ids]), dataset.y[test_ids])
    assert figures["int8_argmax_agreement"] >= 0.97
    assert float((fp32.argmax(1) == dataset.y[test_ids]).mean()) - figures["int8_test_accuracy"] <= 0.02


def test_int8_drop_gate():
    metrics = {"onnx_test_accuracy": 0.93, "test_accuracy": 0.93, "onnx_max_abs_diff": 1e-6, "int8_test_accuracy": 0.91}
    with pytest.raises(CkdError, match=r"int8 accuracy drop 0.0200 .* > validate.max_int8_drop 0.01"):
        check_gates(metrics, 0.5, 1e-4, "models/student.onnx", max_int8_drop=0.01)
    check_gates(metrics, 0.5, 1e-4, "models/student.onnx", max_int8_drop=0.02)
    check_gates({**metrics, "int8_test_accuracy": 0.95}, 0.5, 1e-4, "models/student.onnx", max_int8_drop=0.0)
