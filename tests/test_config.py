import subprocess
import sys

import numpy as np
import pytest
import yaml

from ckd.config import Params, load_config, load_params, load_section, section_from_dict, with_overrides
from ckd.errors import CkdError, ConfigError
from tests.conftest import PROJECT, linear_onnx_teacher
from tests.helpers import with_changes


def test_committed_params_are_the_models_defaults():
    """Defaults live in the models only: params.yaml spells them out (for dvc params diff / exp run -S)
    and must not disagree."""
    assert load_config(PROJECT / "params.yaml").as_dict() == Params().as_dict() == load_params(PROJECT / "params.yaml")


@pytest.mark.parametrize(
    "section,values,parameter",
    [
        ("teacher", {"budget": 0}, "teacher.budget"),
        ("teacher", {"budget": 2.5}, "teacher.budget"),
        ("teacher", {"budget": "100"}, "teacher.budget"),
        ("teacher", {"scores": "softmax"}, "teacher.scores"),
        ("teacher", {"batch_size": 10**7}, "teacher.batch_size"),
        ("student", {"lr": [0.1, -1]}, "student.lr"),
        ("student", {"val_fraction": 1.0}, "student.val_fraction"),
        ("student", {"augment": "rotate"}, "student.augment"),
        ("student", {"batch_size": 10**6}, "student.batch_size"),
        ("student", {"refit": 1}, "student.refit"),
        ("student", {"method": "kd", "method_args": {"temperature": list(range(1, 40))}}, "student.method_args"),
        ("student", {"model_selection": "best"}, "student.model_selection"),
        ("student", {"average_last": 0}, "student.average_last"),
        ("student", {"threads": 0}, "student.threads"),
        ("student", {"threads": "many"}, "student.threads"),
        ("student", {"threads": 10**6}, "student.threads"),
        ("student", {"precision": "fp16"}, "student.precision"),
        ("comparative", {"group_size": 0}, "comparative.group_size"),
        ("comparative", {"negatives": 0}, "comparative.negatives"),
        ("comparative", {"max_groups": 10**9}, "comparative.max_groups"),
        ("validate", {"min_accuracy": 1.5}, "validate.min_accuracy"),
        ("export", {"opset": 7}, "export.opset"),
        ("data", {"test_size": -3}, "data.test_size"),
        ("data", {"source": "mnist.tsv"}, "data.source"),
        ("data", {"source": "digits", "text": ["title"]}, "data.text"),  # text columns need a text table
    ],
)
def test_out_of_range_names_the_parameter(section, values, parameter):
    with pytest.raises(ConfigError) as error:
        section_from_dict(section, values)
    assert str(error.value).startswith(parameter + ":") and ", got " in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_key_lists_allowed():
    with pytest.raises(ConfigError, match=r"student.lerning_rate: unknown parameter; allowed: .*lr.*, got 0.1"):
        section_from_dict("student", {"lerning_rate": 0.1})


def test_backend_fields_belong_to_their_backend():
    http = section_from_dict(
        "teacher",
        {"kind": "http", "url": "http://127.0.0.1:1", "model_name": "m", "backoff_s": 0.05, "ready_timeout_s": 2},
    )
    assert (http.backoff_s, http.max_backoff_s, http.ready_timeout_s) == (0.05, 30.0, 2)
    with pytest.raises(ConfigError, match="teacher.url: unknown parameter for kind onnx; allowed: batch_size"):
        section_from_dict("teacher", {"url": "http://127.0.0.1:1"})
    with pytest.raises(ConfigError, match="teacher.count_file: unknown parameter for kind http"):
        section_from_dict("teacher", {"kind": "http", "url": "http://x", "model_name": "m", "count_file": "c"})
    counting = section_from_dict("teacher", {"kind": "counting", "delay_s": 0.5})
    assert counting.delay_s == 0.5 and counting.model == "models/standin/teacher.onnx"


def test_missing_and_malformed_params_file(tmp_path):
    with pytest.raises(CkdError, match="not found"):
        load_section("teacher", tmp_path / "absent.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("teacher: [unclosed\n")
    with pytest.raises(CkdError, match="params.yaml: not valid YAML"):
        load_section("teacher", bad)


def test_lr_scalar_becomes_grid_and_overrides_validate():
    assert section_from_dict("student", {"lr": 0.01}).lr == (0.01,)
    params = with_overrides(Params(), {"student.steps": 10, "data.split_seed": 3})
    assert params.student.steps == 10 and params.split_seed == 3 and Params().split_seed == Params().seed
    with pytest.raises(ConfigError, match="student.steps: must be an integer >= 1"):
        with_overrides(params, {"student.steps": 0})


def test_a_non_finite_method_argument_survives_as_dict_and_overrides():
    """`student.method_args: {temperature: .inf}` stays inf (a JSON dump would write it as None)."""
    params = Params.model_validate(yaml.safe_load("student: {method: kd, method_args: {temperature: .inf}}"))
    assert params.as_dict()["student"]["method_args"] == {"temperature": float("inf")}
    overridden = with_overrides(params, {"student.steps": 10})
    assert overridden.student.method_args == {"temperature": float("inf")} and overridden.student.steps == 10


def committed_with(change: dict) -> dict:
    return with_changes(load_params(PROJECT / "params.yaml"), change)


BAD = [  # (change to the committed params.yaml, the parameter the one line must name)
    ({"studnet.method": "kd"}, "studnet"),
    ({"student.method": "ckdd"}, "student.method"),
    ({"student.arch": "vit"}, "student.arch"),
    ({"data.selection": "kcentre"}, "data.selection"),
    ({"teacher.kind": "grpc"}, "teacher.kind"),
    ({"teacher.budget": 0}, "teacher.budget"),
    ({"student.method_args": {"temprature": 2}}, "student.method_args"),
    ({"student.arch_args": {"hiden": [8]}}, "student.arch_args"),
    ({"teacher.standin.epochs": 0}, "teacher.standin.epochs"),
    ({"teacher.url": "http://127.0.0.1:1"}, "teacher.url"),
    ({"comparative.max_groups": 10**9}, "comparative.max_groups"),
    ({"validate.min_acuracy": 0.5}, "validate.min_acuracy"),
]


@pytest.mark.parametrize("change,parameter", BAD, ids=[p for _, p in BAD])
def test_a_typo_anywhere_fails_the_first_stage_in_one_line(change, parameter, tmp_path, capsys):
    """`source` is the first stage and reads none of these keys: it still refuses the file, before any work."""
    import ckd.stages.source

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(committed_with(change)))
    with pytest.raises(SystemExit) as exit_status:
        ckd.stages.source.main(
            [
                "--params",
                str(tmp_path / "params.yaml"),
                "--out",
                str(tmp_path / "source.json"),
                "--metrics",
                str(tmp_path / "metrics.json"),
            ]
        )
    assert exit_status.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ckd source: error: {parameter}: ") and ", got " in lines[0]
    assert not (tmp_path / "source.json").exists() and not (tmp_path / "metrics.json").exists()


def test_query_refuses_a_typo_elsewhere_before_any_teacher_call(tmp_path):
    """A process of its own: exit status 2, one line, no traceback, and the teacher computed nothing."""
    from ckd.data import Pool, Selection
    from tests.helpers.counting import computed_samples

    teacher = linear_onnx_teacher(tmp_path / "teacher.onnx", input_shape=[1, 8, 8])
    x = np.random.default_rng(0).integers(0, 17, size=(50, 8, 8)).astype(np.float32)
    Pool(ids=np.arange(50), x=x, class_names=tuple("0123456789"), is_image=True).save(tmp_path / "pool.npz")
    Selection(ids=np.arange(20)).save(tmp_path / "selected.npz")
    params = {
        "teacher": {
            "kind": "counting",
            "model": str(teacher),
            "budget": 20,
            "store": str(tmp_path / "store"),
            "count_file": str(tmp_path / "count.log"),
        },
        "student": {"method": "ckd_pape"},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ckd.stages.query",
            "--params",
            str(tmp_path / "params.yaml"),
            "--pool",
            str(tmp_path / "pool.npz"),
            "--selected",
            str(tmp_path / "selected.npz"),
            "--out",
            str(tmp_path / "queried.npz"),
            "--metrics",
            str(tmp_path / "query.json"),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "ckd query: error: student.method: must be a registered method: ce, ckd, ckd_kd, ckd_paper, dist, kd, "
        "kd_mse, mixup, rkd, got 'ckd_pape'"
    ]
    assert computed_samples(tmp_path / "count.log") == 0 and not (tmp_path / "store").exists()


def test_artifacts_name_the_file_when_wrong_or_missing(tmp_path):
    from ckd.comparative import ComparativeSet
    from ckd.data import Pool, Selection
    from ckd.students.checkpoint import StudentCheckpoint

    Selection(ids=np.arange(3)).save(tmp_path / "selected.npz")
    with pytest.raises(CkdError, match=r"selected.npz: missing array\(s\) x, class_names, is_image; has ids"):
        Pool.load(tmp_path / "selected.npz")
    with pytest.raises(CkdError, match="absent.npz: file not found"):
        ComparativeSet.load(tmp_path / "absent.npz")
    with pytest.raises(CkdError, match="selected.npz: not a readable student checkpoint"):
        StudentCheckpoint.load(tmp_path / "selected.npz")
    again = Selection.load(tmp_path / "selected.npz")
    assert again.ids.tolist() == [0, 1, 2] and again.path == str(tmp_path / "selected.npz")


def test_store_identity_and_url_credentials():
    assert (
        section_from_dict("teacher", {"store": "postgresql://ckd@db.example.com:5432/ckd", "identity": "v2"}).identity
        == "v2"
    )
    for bad, words in [
        ({"store": "mysql://x/y"}, "teacher.store: must be a path (SQLite) or postgresql://"),
        ({"store": ""}, "teacher.store"),
        ({"identity": ""}, "teacher.identity"),
        (
            {"kind": "http", "model_name": "m", "url": "https://me:secret@teacher.example.com"},
            "teacher.url: must not carry a user name or password; put a bearer token in the "
            "environment variable named by teacher.token_env",
        ),
    ]:
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
            section_from_dict("teacher", bad)
