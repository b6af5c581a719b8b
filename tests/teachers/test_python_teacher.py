"""`teacher.kind: python`: a function as the teacher, under the same budget and store as every backend."""

import numpy as np
import pytest

from ckd.errors import ConfigError, TeacherError
from ckd.query import run_query
from ckd.store import open_store
from ckd.teachers import build_teacher
from ckd.teachers.python_callable import PythonTeacherConfig

SOURCE = """
import numpy as np

def count(x):  # the function runs in a process of its own: it counts its calls in a file
    with open(__file__ + ".calls", "a") as calls:
        calls.write(f"{{len(x)}}\\n")

def predict(x):
    count(x)
    return np.stack([x.sum(axis=1), -x.sum(axis=1), np.zeros(len(x))], axis=1) * {scale}

def broken(x):
    count(x)
    raise RuntimeError("the upstream API said no")
"""


def calls(module) -> int:
    path = module.with_name(module.name + ".calls")
    return sum(int(n) for n in path.read_text().split()) if path.exists() else 0


@pytest.fixture
def module(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "user_teacher.py").write_text(SOURCE.format(scale=1.0))
    import importlib
    import sys

    sys.modules.pop("user_teacher", None)
    yield tmp_path / "user_teacher.py"
    sys.modules.pop("user_teacher", None)
    importlib.invalidate_caches()


def test_answers_are_paid_once_and_stored(module, tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    teacher = build_teacher(PythonTeacherConfig(callable="user_teacher:predict", budget=30))
    result = run_query(teacher, np.arange(30), x, 3, 30, tmp_path / "store", batch_size=8, progress=False)
    assert result.calls_this_run == 30 and calls(module) == 30
    assert np.allclose(result.scores[:, 0], x.sum(axis=1), atol=1e-5)
    again = run_query(teacher, np.arange(30), x, 3, 30, tmp_path / "store", batch_size=8, progress=False)
    assert again.calls_this_run == 0 and calls(module) == 30
    assert teacher.identity.startswith("python:user_teacher:predict:")


def test_changed_code_is_a_new_teacher(module):
    first = build_teacher(PythonTeacherConfig(callable="user_teacher:predict")).identity
    module.write_text(SOURCE.format(scale=2.0))
    assert build_teacher(PythonTeacherConfig(callable="user_teacher:predict")).identity != first


def test_an_exception_counts_the_batch_lost_and_stops_in_one_line(module, tmp_path):
    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    teacher = build_teacher(PythonTeacherConfig(callable="user_teacher:broken", budget=20))
    with pytest.raises(TeacherError, match="RuntimeError: the upstream API said no.*stay counted as lost"):
        run_query(teacher, np.arange(20), x, 3, 20, tmp_path / "store", batch_size=10, progress=False)
    assert open_store(str(tmp_path / "store")).spent() == 10  # the first batch may have been paid: counted


def test_bad_callables_name_the_parameter(module):
    with pytest.raises(ConfigError, match="teacher.callable: user_teacher has no function 'nothing'"):
        build_teacher(PythonTeacherConfig(callable="user_teacher:nothing"))
    with pytest.raises(ConfigError, match="teacher.callable: no module 'not_there'"):
        build_teacher(PythonTeacherConfig(callable="not_there:predict"))
