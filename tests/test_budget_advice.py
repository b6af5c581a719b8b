"""Issue 18: selection size and store budget are two settings, so the advice a failed run gives works when
followed. The case: a store whose calls went mostly to another teacher; this run's selection gets too few
answers; the settings the error names are applied as written, the stages run again, and the run passes."""

import re

import numpy as np
import yaml

from ckd.query import run_query
from tests.helpers import PROJECT, copy_project, linear_onnx_teacher, with_changes
from tests.helpers.counting import computed_samples
from tests.helpers.stages import run_stage_commands
from tests.test_store_damage import Scores


class Elsewhere(Scores):
    """Another teacher that spent most of the shared purse before."""

    identity, classes = "another-teacher", 10


def test_following_the_advice_of_a_run_short_of_answers_works(tmp_path, capsys, monkeypatch):
    root = copy_project(tmp_path / "project", ("dvc.yaml", "ckd"))
    linear_onnx_teacher(root / "teacher.onnx", input_shape=[1, 8, 8])
    store = str(root / "store")
    run_query(Elsewhere(), np.arange(30), np.random.default_rng(1).normal(size=(30, 2)), 10, 30, store, progress=False)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["teacher"].update(
        kind="counting", model="teacher.onnx", count_file=str(root / "count.log"), store=store, budget=40
    )
    params["teacher"]["min_answered"] = 0.9
    (root / "params.yaml").write_text(yaml.safe_dump(params))

    failed = run_stage_commands(root, capsys, monkeypatch, until="query")
    assert failed is not None and failed.stage == "query" and failed.returncode == 2
    # 40 selected, the purse had 10 left: 10 answered, 36 needed
    advice = re.search(
        r"set data\.selection_size: (\d+) \(keeps this selection\) and raise teacher\.budget to at "
        r"least (\d+)",
        failed.stderr,
    )
    assert advice is not None, failed.stderr
    size, budget = int(advice[1]), int(advice[2])
    assert (size, budget) == (40, 30 + 36)

    params = with_changes(params, {"data.selection_size": size, "teacher.budget": budget})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_stage_commands(root, capsys, monkeypatch, until="query") is None  # it works
    metrics = yaml.safe_load((root / "metrics" / "query.json").read_text())
    assert metrics["selected"] == 40 and metrics["answered_selected"] == 36 and metrics["calls_spent_total"] == 66
    assert computed_samples(root / "count.log") == 36  # the 10 paid before were not asked again
