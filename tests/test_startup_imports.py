"""A stage's start-up imports only what the stage uses (issue 12): importing the stage script and validating
the whole params file (what `ckd/stages/_entry.py` does first) loads no torch in the stages that do not train,
Great Expectations only in `check`, ONNX Runtime only where a model runs, Prefect in none. Imports, not
seconds, are asserted: each case runs in a fresh interpreter and reads `sys.modules`."""

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import PROJECT

HEAVY = ("torch", "onnx", "onnxruntime", "great_expectations", "prefect", "pandas", "sklearn", "httpx")
# What each stage may load before its body runs; anything else from HEAVY is a regression.
ALLOWED: dict[str, set[str]] = {
    "sample": set(),
    "query": set(),  # the teacher's runtime (ONNX Runtime, httpx) is loaded when the teacher is built
    "check": set(),  # Great Expectations is loaded when the check runs
    "build": set(),
    "embed": set(),  # the text encoder (torch) is loaded when the embedding runs
}
# Not the defaults, so that validation reads arguments of other registered entries too.
PARAMS = {
    "student": {"arch": "cnn", "arch_args": {"channels": [8, 16]}, "method": "kd", "method_args": {"temperature": 2}}
}

PROBE = """
import json, sys
import ckd.stages.{stage}
from ckd.config import load_config
load_config(sys.argv[1])
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set(sys.argv[2].split(',')))))
"""


def heavy_after(code: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args, ",".join(HEAVY)], cwd=PROJECT, capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    return done, json.loads(lines[-1]) if lines else []


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_a_stage_without_torch_starts_without_torch(tmp_path, stage):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    done, loaded = heavy_after(PROBE.format(stage=stage), str(params))
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(loaded) <= ALLOWED[stage], f"ckd.stages.{stage} loaded {loaded} at start-up"


@pytest.mark.parametrize(
    "student,line",
    [
        (
            {"method": "kd", "method_args": {"temprature": 2}},
            "ckd sample: error: student.method_args: unknown 'temprature'; method 'kd' takes temperature, w_ce, "
            "got {'temprature': 2}",
        ),
        (
            {"arch": "mlp", "arch_args": {"hiden": [8]}},
            "ckd sample: error: student.arch_args: unknown 'hiden'; student architecture 'mlp' takes hidden, "
            "got {'hiden': [8]}",
        ),
        (
            {"method": "ckd_pape"},
            "ckd sample: error: student.method: must be a registered method: ce, ckd, ckd_kd, ckd_paper, dist, kd, "
            "kd_mse, mixup, rkd, got 'ckd_pape'",
        ),
    ],
)
def test_a_bad_student_fails_the_first_stage_in_one_line_without_torch(tmp_path, student, line):
    """The first stage's real entry point refuses the typo (exit 2, one line) and has not loaded torch."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"student": student}))
    code = (
        "import atexit, json, runpy, sys\n"
        "heavy = set(sys.argv[-1].split(','))\n"
        "atexit.register(lambda: print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy))))\n"
        "sys.argv = ['ckd.stages.sample', '--params', sys.argv[1], '--pool', 'p.npz', '--test', 't.npz',"
        " '--selected', 's.npz', '--metrics', '']\n"
        "runpy.run_module('ckd.stages.sample', run_name='__main__')\n"
    )
    done, loaded = heavy_after(code, str(params))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [line]
    assert "torch" not in loaded, loaded


def test_prefect_is_never_loaded_by_a_stage(tmp_path):
    """Every stage of dvc.yaml, imported with the whole file validated: no Prefect (the flow drives DVC)."""
    stages = list(yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"])
    code = (
        "import importlib, json, sys\n"
        "from ckd.config import load_config\n"
        f"for s in {stages!r}: importlib.import_module('ckd.stages.' + s)\n"
        "load_config(sys.argv[1])\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[2].split(',')))))\n"
    )
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    done, loaded = heavy_after(code, str(params))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "prefect" not in loaded and "great_expectations" not in loaded, loaded
