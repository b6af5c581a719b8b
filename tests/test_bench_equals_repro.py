"""A benchmark row and `dvc repro` with the row's params give the same student (not a second pipeline),
for the image default and for the table modality's default recipe (examples/pendigits/params.yaml)."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ckd.bench.recipes import RECIPES, TABLE_DEFAULT_RECIPE
from ckd.bench.run import variant_overrides
from ckd.config import load_config, with_overrides
from tests.conftest import PROJECT

DVC = str(Path(sys.executable).with_name("dvc"))
# One thread everywhere: the same float sums in the benchmark's worker and in each stage process.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(PROJECT)}
PATHS_OF_THE_RUN = ("teacher.model", "teacher.store")  # where files live, not what is computed


def new_project(tmp_path: Path, params: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for item in ("dvc.yaml", "stages", "ckd", "serving"):
        source = PROJECT / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, project / item)
    shutil.copy(params, project / "params.yaml")
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=project, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=project, check=True)
    return project


def bench_row_then_repro(tmp_path: Path, project: Path, bench_args: list[str]) -> tuple[dict, dict]:
    """One benchmark row, then `dvc repro` of the project with that row's params; returns (row, its overrides)."""
    bench = subprocess.run(
        [sys.executable, "-m", "ckd.bench", "--params", str(project / "params.yaml"), *bench_args,
         "--seeds", "1", "--science-seeds", "0", "--regimes", "labelled", "--steps", "200", "--lr", "0.003",
         "--teacher-epochs", "3", "--set", "student.eval_every=50", "--set", "validate.min_accuracy=0.3",
         "--workers", "1", "--out", str(tmp_path / "bench")],
        cwd=PROJECT, env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr[-2000:]
    with open(tmp_path / "bench" / "results.csv") as handle:
        (row,) = list(csv.DictReader(handle))

    overrides = {k: v for k, v in json.loads(row["overrides"]).items() if k not in PATHS_OF_THE_RUN}
    params = with_overrides(load_config(project / "params.yaml"), overrides)
    (project / "params.yaml").write_text(yaml.safe_dump(params.as_dict(), sort_keys=False))
    repro = subprocess.run([DVC, "repro"], cwd=project, env=ENV, capture_output=True, text=True)
    assert repro.returncode == 0, repro.stderr[-2000:]

    validate = json.loads((project / "metrics" / "validate.json").read_text())
    train = json.loads((project / "metrics" / "train" / "metrics.json").read_text())
    assert abs(validate["test_accuracy"] - float(row["test_accuracy"])) <= 1e-6
    assert abs(train["val_accuracy"] - float(row["val_accuracy"])) <= 1e-6
    assert train["best_step"] == json.loads(row["chosen"])["step"]
    assert validate["calls_spent_total"] == int(row["teacher_calls"])
    return row, overrides


@pytest.mark.timeout(900)  # two small runs of the whole pipeline on a busy 2-core machine
def test_benchmark_row_equals_dvc_repro(tmp_path):
    project = new_project(tmp_path, PROJECT / "params.yaml")
    _, overrides = bench_row_then_repro(
        tmp_path, project, ["--dataset", "digits", "--budgets", "40", "--variants", "ckd"]
    )
    assert overrides["student.steps"] == 200 and overrides["teacher.budget"] == 40


def tiny_table(path: Path, rows: int = 240, features: int = 8, classes: int = 4) -> Path:
    """A small labelled CSV table (Gaussian classes), so that the test needs no ../shared data."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, rows)
    x = rng.normal(size=(classes, features))[labels] * 2 + rng.normal(size=(rows, features))
    lines = [",".join([*(f"f{i}" for i in range(features)), "label"])]
    lines += [",".join([*(f"{v:.4f}" for v in row), str(label)]) for row, label in zip(x, labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.timeout(900)
def test_table_default_recipe_row_equals_dvc_repro(tmp_path):
    """The table's default recipe (its pool term and corruption included) is what the table params file runs:
    the recipe's overrides leave the file's student section as it is, and that row equals `dvc repro`."""
    table_params = PROJECT / "examples" / "pendigits" / "params.yaml"
    base = load_config(table_params)
    recipe = variant_overrides(TABLE_DEFAULT_RECIPE, {}, None)
    assert with_overrides(base, recipe).student == base.student, "examples/pendigits/params.yaml != the default recipe"
    assert RECIPES[TABLE_DEFAULT_RECIPE].student.get("unlabelled_weight", 0) == base.student.unlabelled_weight

    project = new_project(tmp_path, table_params)
    table = tiny_table(tmp_path / "table.csv")
    bench_args = ["--dataset", str(table), "--test-size", "60", "--budgets", "40", "--variants", TABLE_DEFAULT_RECIPE,
                  "--set", "data.test_source=null"]  # fmt: skip
    _, overrides = bench_row_then_repro(tmp_path, project, bench_args)
    assert overrides["data.source"] == str(table) and overrides["teacher.budget"] == 40
