"""A benchmark row and `dvc repro` with the row's params give the same student (not a second pipeline)."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ckd.config import load_config, with_overrides
from tests.conftest import PROJECT

DVC = str(Path(sys.executable).with_name("dvc"))
# One thread everywhere: the same float sums in the benchmark's worker and in each stage process.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(PROJECT)}
PATHS_OF_THE_RUN = ("teacher.model", "teacher.store")  # where files live, not what is computed


@pytest.mark.timeout(900)  # two small runs of the whole pipeline on a busy 2-core machine
def test_benchmark_row_equals_dvc_repro(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for item in ("dvc.yaml", "params.yaml", "stages", "ckd", "serving"):
        source = PROJECT / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, project / item)
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=project, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=project, check=True)

    bench = subprocess.run(
        [
            sys.executable,
            "-m",
            "ckd.bench",
            "--params",
            str(project / "params.yaml"),
            "--dataset",
            "digits",
            "--budgets",
            "40",
            "--seeds",
            "1",
            "--science-seeds",
            "0",
            "--variants",
            "ckd",
            "--regimes",
            "labelled",
            "--steps",
            "200",
            "--lr",
            "0.003",
            "--teacher-epochs",
            "3",
            "--set",
            "student.eval_every=50",
            "--set",
            "validate.min_accuracy=0.3",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "bench"),
        ],
        cwd=PROJECT,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert bench.returncode == 0, bench.stderr[-2000:]
    with open(tmp_path / "bench" / "results.csv") as handle:
        (row,) = list(csv.DictReader(handle))

    overrides = {k: v for k, v in json.loads(row["overrides"]).items() if k not in PATHS_OF_THE_RUN}
    assert overrides["student.steps"] == 200 and overrides["teacher.budget"] == 40
    params = with_overrides(load_config(project / "params.yaml"), overrides)
    (project / "params.yaml").write_text(yaml.safe_dump(params.as_dict(), sort_keys=False))
    repro = subprocess.run([DVC, "repro"], cwd=project, env=ENV, capture_output=True, text=True)
    assert repro.returncode == 0, repro.stderr[-2000:]

    validate = json.loads((project / "metrics" / "validate.json").read_text())
    train = json.loads((project / "metrics" / "train" / "metrics.json").read_text())
    assert abs(validate["test_accuracy"] - float(row["test_accuracy"])) <= 1e-6
    assert abs(train["val_accuracy"] - float(row["val_accuracy"])) <= 1e-6
    assert train["best_step"] == json.loads(row["chosen"])["step"]
    assert validate["calls_spent_total"] == int(row["teacher_calls"]) == 40
