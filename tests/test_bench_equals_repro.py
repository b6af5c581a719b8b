"""A benchmark row and `dvc repro` with the row's params give the same student (not a second pipeline)."""

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

from bench.recipes import DEFAULT_BY_MODALITY, RECIPES, TABLE_DEFAULT_RECIPE, TEXT_DEFAULT_RECIPE
from bench.run import variant_overrides
from ckd.config import load_config, with_overrides
from tests.conftest import PROJECT

DVC = str(Path(sys.executable).with_name("dvc"))
# One thread everywhere: the same float sums in the benchmark's worker and in each stage process.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(PROJECT)}
PATHS_OF_THE_RUN = ("teacher.model", "teacher.store")  # where files live, not what is computed
IMAGE_DEFAULT = DEFAULT_BY_MODALITY["image"]


def copy_project(tmp_path: Path, params: Path) -> Path:
    """The pipeline (root dvc.yaml, its stages and code) in a fresh DVC project under `tmp_path`, with `params`."""
    project = tmp_path / "project"
    project.mkdir()
    for item in ("dvc.yaml", "ckd", "serving"):
        source = PROJECT / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, project / item)
    shutil.copy(params, project / "params.yaml")
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=project, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=project, check=True)
    return project


def only_row(results: Path, **where: str) -> dict:
    """The one row of `results` (a results.csv) whose columns have the values `where` gives."""
    with open(results) as handle:
        (row,) = [row for row in csv.DictReader(handle) if all(row[k] == v for k, v in where.items())]
    return row


def repro_with_overrides(project: Path, row: dict) -> tuple[dict, dict, dict]:
    """`dvc repro` of `project` with the row's overrides on its params: (the row, validate's, train's metrics)."""
    overrides = {k: v for k, v in json.loads(row["overrides"]).items() if k not in PATHS_OF_THE_RUN}
    rowed = with_overrides(load_config(project / "params.yaml"), overrides)
    (project / "params.yaml").write_text(yaml.safe_dump(rowed.as_dict(), sort_keys=False))
    repro = subprocess.run([DVC, "repro"], cwd=project, env=ENV, capture_output=True, text=True)
    assert repro.returncode == 0, repro.stderr[-2000:]
    validate = json.loads((project / "metrics" / "validate.json").read_text())
    train = json.loads((project / "metrics" / "train" / "metrics.json").read_text())
    return {**row, "overrides": overrides}, validate, train


def bench_row_and_repro(
    tmp_path: Path, dataset: str, bench_args: list[str], params: Path = PROJECT / "params.yaml"
) -> tuple[dict, dict, dict]:
    """One benchmark row (`python -m bench`) on `params`, then `dvc repro` of a copy of the project with
    those params and the row's overrides: (the row, validate's metrics, train's metrics)."""
    project = copy_project(tmp_path, params)
    command = [sys.executable, "-m", "bench", "--params", str(project / "params.yaml"), "--dataset", dataset]
    common = ["--seeds", "1", "--science-seeds", "0", "--regimes", "labelled", "--teacher-epochs", "3"]
    common += ["--set", "validate.min_accuracy=0.3", "--workers", "1", "--out", str(tmp_path / "bench")]
    bench = subprocess.run(command + common + bench_args, cwd=PROJECT, env=ENV, capture_output=True, text=True)
    assert bench.returncode == 0, bench.stderr[-2000:]
    return repro_with_overrides(project, only_row(tmp_path / "bench" / "results.csv"))


def assert_same_student(row: dict, validate: dict, train: dict, budget: int) -> None:
    assert abs(validate["test_accuracy"] - float(row["test_accuracy"])) <= 1e-6
    assert abs(train["val_accuracy"] - float(row["val_accuracy"])) <= 1e-6
    assert train["best_step"] == json.loads(row["chosen"])["step"]
    assert validate["calls_spent_total"] == int(row["teacher_calls"]) == budget


@pytest.mark.timeout(900)  # two small runs of the whole pipeline on a busy 2-core machine
def test_benchmark_row_equals_dvc_repro(tmp_path):
    args = ["--budgets", "40", "--variants", "ckd", "--steps", "200", "--lr", "0.003", "--set", "student.eval_every=50"]
    row, validate, train = bench_row_and_repro(tmp_path, "digits", args)
    assert row["overrides"]["student.steps"] == 200 and row["overrides"]["teacher.budget"] == 40
    assert_same_student(row, validate, train, 40)


def write_image_folder(root: Path, per_class: int = 30, size: int = 16) -> Path:
    """Three classes of small RGB PNG images: a bright square in a class-specific colour and corner, plus noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
            top, left = (k * 5 + int(rng.integers(0, 3))) % (size - 6), int(rng.integers(0, size - 6))
            image[top : top + 6, left : left + 6, k] = 230
            Image.fromarray(image).save(root / name / f"{i:03d}.png")
    return root


@pytest.mark.timeout(900)
def test_image_default_recipe_row_equals_dvc_repro(tmp_path):
    """The natural-image default recipe (bench/cifar10): a convolutional student, flip + crop augmentation, the
    free pool inputs' term and a learning-rate grid, on a tiny synthetic image folder."""
    folder = write_image_folder(tmp_path / "images")
    args = [
        "--budgets",
        "30",
        "--test-size",
        "20",
        "--variants",
        IMAGE_DEFAULT,
        "--augment",
        "shift_flip",
        "--arch",
        "cnn",
        "--arch-args",
        '{"channels": [8, 16]}',
        "--steps",
        "40",
        "--lr",
        "0.003,0.001",
        "--set",
        "student.eval_every=20",
        "--set",
        "teacher.standin.channels=[8, 16]",
    ]
    row, validate, train = bench_row_and_repro(tmp_path, str(folder), args)
    overrides = row["overrides"]
    assert overrides["student.arch"] == "cnn" and overrides["student.augment"] == "shift_flip"
    assert overrides["student.unlabelled_weight"] > 0 and len(overrides["student.lr"]) == 2
    assert_same_student(row, validate, train, 30)


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

    table = tiny_table(tmp_path / "table.csv")
    args = ["--test-size", "60", "--budgets", "40", "--variants", TABLE_DEFAULT_RECIPE, "--steps", "200",
            "--lr", "0.003", "--set", "student.eval_every=50", "--set", "data.test_source=null"]  # fmt: skip
    row, validate, train = bench_row_and_repro(tmp_path, str(table), args, params=table_params)
    assert row["overrides"]["data.source"] == str(table) and row["overrides"]["teacher.budget"] == 40
    assert_same_student(row, validate, train, 40)


@pytest.mark.timeout(1200)  # the frozen encoder, a benchmark row and the whole text pipeline on a busy 2-core machine
def test_text_default_recipe_row_equals_dvc_repro(tmp_path):
    """The text default recipe (embedding corruption and the free pool texts' term) is what the AG News params
    file runs; a `bench.text` row of it on a tiny AG-News-shaped CSV, its teacher the stand-in LLM server on
    127.0.0.1, equals `dvc repro` of the one root pipeline with the row's overrides."""
    from examples.ag_news.llm_server import StandinLLMServer, standin_from_data
    from tests.helpers.text import LABEL_WORDS, write_text_csv

    text_params = PROJECT / "examples" / "ag_news" / "params.yaml"
    assert with_overrides(load_config(text_params), variant_overrides(TEXT_DEFAULT_RECIPE, {}, None)).student == (
        load_config(text_params).student
    ), "examples/ag_news/params.yaml != the text default recipe"

    news = tmp_path / "news.csv"
    write_text_csv(news, count=240, seed=7, own=0.5)  # ambiguous texts: neither teacher nor student is perfect
    test_size, budget = 60, 60
    params = yaml.safe_load(text_params.read_text())
    params["data"] |= {"source": str(news), "download": None, "mirror": None, "test_size": test_size}
    # the gates are not what is compared here (one int8 flip among 60 test texts is a drop of 0.017)
    params["validate"] |= {"min_accuracy": 0.3, "max_int8_drop": 0.2, "latency_runs": 3}
    # the store is no param of a stage (and no path of the row): one of this test's own, apart from the example's
    params["teacher"] |= {"store": str(tmp_path / "store")}
    llm, _ = standin_from_data(str(news), params["data"]["text"], params["data"]["label"], LABEL_WORDS, test_size, 0)
    with StandinLLMServer(llm, params["teacher"]["model_name"]) as server:
        params["teacher"]["url"] = server.url
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        project = copy_project(tmp_path, tmp_path / "params.yaml")
        embed = subprocess.run([DVC, "repro", "embed"], cwd=project, env=ENV, capture_output=True, text=True)
        assert embed.returncode == 0, embed.stderr[-2000:]

        command = [sys.executable, "-m", "bench.text", "--params", str(project / "params.yaml")]
        # two data seeds, the second's row reproduced: the benchmark's split must not follow the seed (the
        # pipeline's does unless data.split_seed is set)
        command += ["--embedded", str(project / "data" / "embedded.npz"), "--budgets", str(budget), "--seeds", "2"]
        command += ["--variants", TEXT_DEFAULT_RECIPE, "--regimes", "labelled", "--steps", "200"]
        command += ["--out", str(tmp_path / "bench")]
        bench = subprocess.run(command, cwd=PROJECT, env=ENV, capture_output=True, text=True)
        assert bench.returncode == 0, bench.stderr[-2000:]
        computed_by_bench = server.computed
        row, validate, train = repro_with_overrides(project, only_row(tmp_path / "bench" / "results.csv", seed="1"))
        assert server.computed - computed_by_bench == budget  # repro asked this server; the bench, its own
    assert computed_by_bench == 0
    assert row["overrides"]["teacher.budget"] == budget and row["overrides"]["student.steps"] == 200
    assert row["overrides"]["seed"] == 1 and row["overrides"]["data.split_seed"] == 0
    assert row["overrides"]["student.augment"] == "corrupt" and row["overrides"]["student.unlabelled_weight"] > 0
    assert_same_student(row, validate, train, budget)
