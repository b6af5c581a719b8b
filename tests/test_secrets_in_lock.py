"""Issue 18: a password in `teacher.store` never reaches dvc.lock. Before, the standin stage depended on the whole
`teacher` section and ran (writing its lock entry) before `query` refused the password. A real `dvc repro` in a
copy of the project; the store's user name does not reach dvc.lock either (only scheme/host/port/database)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT, copy_project

DVC = str(Path(sys.executable).with_name("dvc"))


@pytest.mark.slow
def test_a_password_in_the_store_url_reaches_no_file_dvc_writes(tmp_path):
    root = copy_project(tmp_path / "project", ("dvc.yaml", "ckd"))
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["teacher"]["store"] = "postgresql://alice:hunter2@127.0.0.1:5432/ckd_team"
    params["teacher"]["standin"]["epochs"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "config", "core.analytics", "false"], cwd=root, check=True)
    run = subprocess.run([DVC, "repro"], cwd=root, capture_output=True, text=True, timeout=1800)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("ckd ")]
    assert errors == [
        "ckd query: error: teacher.store: holds a password; remove it and set PGPASSWORD or ~/.pgpass instead "
        "(params.yaml and dvc.lock must carry no secret)"
    ], run.stderr[-2000:]
    lock = (root / "dvc.lock").read_text()
    assert {"source", "standin", "teacher", "sample"} <= set(yaml.safe_load(lock)["stages"])  # they ran
    written = [lock, (root / "models" / "teacher.json").read_text()]
    written += [path.read_text() for path in (root / "metrics").glob("*.json")]
    assert not any("hunter2" in text or "alice" in text for text in written)
    assert "postgresql://127.0.0.1:5432/ckd_team" in (root / "models" / "teacher.json").read_text()
