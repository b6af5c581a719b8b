"""The `source` fingerprint: it changes when a data file does, and reads a file again only when its size or
modification time changed."""

import pytest

from ckd import fingerprint
from ckd.config import DataConfig
from ckd.errors import CkdError
from ckd.stages import source as source_stage
from tests.helpers.own_data import image_folder, table


def test_a_changed_file_changes_the_fingerprint_and_unchanged_files_are_not_read_again(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "images", per_class=3)
    test = table(tmp_path / "test.csv")
    data = DataConfig.model_validate({"source": str(folder), "test_source": str(test)})
    cache = tmp_path / "hashes.json"
    first = source_stage.source_fingerprint(data, cache)
    assert len(first["files"]) == 6 and len(first["test_files"]) == 1

    reads = []
    real = fingerprint.file_sha256
    monkeypatch.setattr(fingerprint, "file_sha256", lambda path: reads.append(path) or real(path))
    assert source_stage.source_fingerprint(data, cache) == first and reads == []  # nothing read again

    (folder / "dark" / "000.png").write_bytes((folder / "bright" / "000.png").read_bytes() + b"\0")
    changed = source_stage.source_fingerprint(data, cache)
    assert [p.name for p in reads] == ["000.png"]
    assert changed["files"] != first["files"] and changed["test_files"] == first["test_files"]


def test_the_embedded_demo_has_no_files_and_a_missing_file_is_one_line(tmp_path):
    assert source_stage.source_fingerprint(DataConfig.model_validate({}))["files"] == {}
    with pytest.raises(CkdError, match=r"gone.csv: file not found \(data.source\)"):
        source_stage.source_fingerprint(DataConfig.model_validate({"source": str(tmp_path / "gone.csv")}))
