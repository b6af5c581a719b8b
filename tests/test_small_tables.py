"""Defaults that fit small tables (issue 20): a 178-row table (UCI Wine, bundled with scikit-learn) runs every
stage on the repository's params.yaml with only `data.source` (and the store) changed; a failed gate says what
it gated and which setting would let it pass."""

from __future__ import annotations

import json

import pytest
import yaml

from ckd.config import DataConfig
from ckd.data.split import split_pool_test
from ckd.errors import CkdError
from ckd.validate import check_gates
from tests.helpers import PROJECT, copy_project
from tests.helpers.stages import run_stage_commands


def test_the_default_test_size_is_a_fraction_that_fits_any_table():
    assert DataConfig().test_size == 0.2
    pool, test = split_pool_test(178, DataConfig().test_size, 0)
    assert (len(pool), len(test)) == (142, 36)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    assert params["data"]["test_size"] == 0.2  # the file a user copies, too


def test_a_failed_gate_says_what_it_gated_and_how_to_relax_it():
    metrics = {
        "test_accuracy": 0.8125,
        "onnx_test_accuracy": 0.8125,
        "int8_test_accuracy": 0.78,
        "onnx_max_abs_diff": 2e-6,
        "test_size": 36,
    }
    with pytest.raises(CkdError) as error:
        check_gates(metrics, 0.85, 1e-4, "models/student.onnx", 0.01)
    message = str(error.value)
    assert "\n" not in message
    assert "onnx_test_accuracy 0.8125 on 36 held-out samples < validate.min_accuracy 0.85" in message
    assert "int8 accuracy drop 0.0325" in message and "> validate.max_int8_drop 0.01" in message
    assert message.endswith("`dvc exp run -S validate.max_int8_drop=0.04 -S validate.min_accuracy=0.81`")
    relaxed = check_gates(metrics, 0.81, 1e-4, "models/student.onnx", 0.04)  # the suggested settings pass
    assert relaxed is None


@pytest.mark.slow
def test_a_178_row_table_completes_on_the_default_params(tmp_path, capsys, monkeypatch):
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True)
    table = wine.data.assign(label=[wine.target_names[k] for k in wine.target])
    assert len(table) == 178
    table.to_csv(tmp_path / "wine.csv", index=False)
    root = copy_project(tmp_path / "project")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["source"] = str(tmp_path / "wine.csv")
    params["teacher"]["store"] = str(tmp_path / "store")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    outcome = run_stage_commands(root, capsys, monkeypatch)
    assert outcome is None, f"{outcome.stage} failed: {outcome.stderr[-2000:]}"
    metrics = json.loads((root / "metrics" / "validate.json").read_text())
    assert metrics["test_size"] == 36 and metrics["onnx_test_accuracy"] >= params["validate"]["min_accuracy"]
    decision = json.loads((root / "metrics" / "decision.json").read_text())
    assert decision == {key: metrics[key] for key in ("onnx_test_accuracy", "calls_spent_total")}
    scale = json.loads((root / "models" / "serving" / "input.json").read_text())
    assert scale["observed_max"] > 1000  # proline in mg/l: raw units, the scaling is inside the graph
    assert "raw, as the data source holds them" in (root / "models" / "model_card.md").read_text()
