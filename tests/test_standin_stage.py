"""The `standin` stage: trains only for the demo's teacher, and keeps a trained stand-in while its training
key (data, split, settings, trainer code) is unchanged, so the teacher's identity in the store is kept."""

import json

import yaml

import ckd.stages.source
import ckd.stages.standin
from tests.helpers import PROJECT


def run(tmp_path, change: dict) -> dict:
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["teacher"]["standin"]["epochs"] = 1
    for dotted, value in change.items():
        section, key = dotted.split(".")
        params[section][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    common = ["--params", str(tmp_path / "params.yaml")]
    ckd.stages.source.main(
        [*common, "--out", str(tmp_path / "source.json"), "--metrics", str(tmp_path / "m_source.json")]
    )
    ckd.stages.standin.main(
        [
            *common,
            "--source",
            str(tmp_path / "source.json"),
            "--out",
            str(tmp_path / "standin"),
            "--metrics",
            str(tmp_path / "m_standin.json"),
        ]
    )
    return json.loads((tmp_path / "m_standin.json").read_text())


def test_kept_when_only_other_params_change_retrained_when_its_own_do(tmp_path):
    first = run(tmp_path, {})
    model = tmp_path / "standin" / "teacher.onnx"
    assert first["trained"] == 1 and model.is_file()
    stamp = model.stat().st_mtime_ns
    assert run(tmp_path, {"teacher.budget": 300, "data.selection": "kcenter"}) == first  # kept, not retrained
    assert model.stat().st_mtime_ns == stamp
    run(tmp_path, {"data.test_size": 400})  # its own data changed: trained again
    assert model.stat().st_mtime_ns != stamp


def test_a_users_teacher_trains_nothing(tmp_path):
    assert run(tmp_path, {"teacher.model": "elsewhere/teacher.onnx"}) == {"trained": 0}
    assert not (tmp_path / "standin" / "teacher.onnx").exists()
    assert "No stand-in teacher was trained" in (tmp_path / "standin" / "NOT_USED.txt").read_text()
