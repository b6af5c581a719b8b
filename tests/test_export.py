import numpy as np
import torch

from ckd.export import export_onnx, read_metadata
from ckd.students import build_student
from ckd.validate import onnx_logits, torch_logits


def test_export_parity_dynamic_batch_and_metadata(tmp_path):
    torch.manual_seed(0)
    raw = np.random.default_rng(0).integers(0, 17, size=(37, 8, 8)).astype(np.float32)
    for arch in ("mlp", "cnn"):
        model = build_student(arch, (8, 8), 10, raw.mean(0), raw.std(0) + 1, {})
        path = export_onnx(
            model, (8, 8), tmp_path / f"{arch}.onnx", opset=17, metadata={"method": "ckd", "class_names": ["0", "1"]}
        )
        for batch in (1, 37):  # the batch axis is dynamic
            assert np.abs(torch_logits(model, raw[:batch]) - onnx_logits(path, raw[:batch])).max() < 1e-4
        meta = read_metadata(path)
        assert meta["method"] == "ckd" and meta["class_names"] == '["0", "1"]'
