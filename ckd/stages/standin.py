"""`standin`: the embedded demo's stand-in teacher, trained on the whole labelled pool (not a teacher call).

It trains only when `teacher.model` names a file under `models/standin/` (the default) with an ONNX
backend: with your own ONNX file, or a server (`http`, `openai`) or code (`python`) as the teacher, the
stage writes a note instead and no stand-in is trained. DVC has no conditional stages; this stage is a
no-op by construction, and the `teacher` stage after it fingerprints whichever teacher is in use.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ckd.config import DataConfig, Params, StandinConfig
from ckd.data import load_source, split_pool_test
from ckd.errors import CkdError
from ckd.stages._entry import parser, run
from ckd.teachers.base import TeacherSettings
from ckd.teachers.onnx_file import OnnxTeacherConfig, file_sha256

if TYPE_CHECKING:  # torch, at type-checking time only
    from ckd.teachers.standin import StandinTeacher

log = logging.getLogger(__name__)

STANDIN_DIR = Path("models/standin")
STANDIN_FILE = "teacher.onnx"
NOTE_FILE = "NOT_USED.txt"
RECORD_FILE = "standin.json"  # the training key and metrics of the stand-in beside it
TRAINER = Path(__file__).resolve().parents[1] / "teachers" / "standin.py"
DATA_KEYS = {"source", "test_source", "test_size", "label", "test_label", "features", "image_size", "class_names"}


def standin_used(teacher: TeacherSettings) -> bool:
    """The stand-in is the teacher: an ONNX backend whose `teacher.model` lies under models/standin/."""
    return isinstance(teacher, OnnxTeacherConfig) and Path(teacher.model).resolve().is_relative_to(
        STANDIN_DIR.resolve()
    )


def standin(
    data: DataConfig, standin: StandinConfig, split_seed: int, progress: bool = True
) -> tuple[StandinTeacher, dict[str, Any]]:
    """Train the stand-in on the pool of the labelled split (the test split stays unseen)."""
    import torch

    from ckd.teachers.standin import StandinTeacher, train_standin

    dataset = load_source(data.source, data)
    if dataset.y is None:
        raise CkdError(
            f"{data.source}: has no labels, and teacher.model ({STANDIN_DIR}/{STANDIN_FILE}) is the demo's stand-in, "
            "which trains on labels: point teacher.model at your ONNX teacher, or set teacher.kind to http, openai "
            "or python"
        )
    if data.test_source is not None:
        pool_ids, test_ids = np.arange(len(dataset.x)), None
    else:
        pool_ids, test_ids = split_pool_test(len(dataset.x), data.test_size, split_seed)
    model, input_shape = train_standin(
        dataset.x[pool_ids], dataset.y[pool_ids], dataset.num_classes, dataset.is_image, standin, split_seed, progress
    )
    metrics: dict[str, Any] = {"trained": 1, "pool_size": int(len(pool_ids)), "input_shape": list(input_shape)}
    if test_ids is not None:
        with torch.no_grad():
            x_test = torch.as_tensor(dataset.x[test_ids]).reshape(len(test_ids), *input_shape)
            # Measured in-process on the PyTorch model: no teacher call is made or counted here.
            metrics["standin_test_accuracy"] = float((model(x_test).argmax(1).numpy() == dataset.y[test_ids]).mean())
    return StandinTeacher(model, input_shape, dataset.class_names), metrics


def training_key(data: DataConfig, settings: StandinConfig, split_seed: int, source_fingerprint: str) -> str:
    """What the stand-in's weights depend on: its data (the files' fingerprint and DATA_KEYS, which read them),
    the split, its settings and the trainer's code. The stage depends on whole params sections (a key may go
    missing from a user's params.yaml, a section never), so it also runs when something else in them changes:
    then this key is unchanged and the stand-in is kept (`persist` in dvc.yaml), with its identity in the store."""
    payload = {
        "data": data.model_dump(include=DATA_KEYS),
        "split_seed": split_seed,
        "standin": settings.model_dump(),
        "trainer": file_sha256(TRAINER),
        "source": source_fingerprint,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def kept_metrics(out_dir: Path, key: str) -> dict[str, Any] | None:
    """The metrics of the stand-in in `out_dir` when it was trained with `key`, else None."""
    record = out_dir / RECORD_FILE
    if not (record.is_file() and (out_dir / STANDIN_FILE).is_file()):
        return None
    try:
        saved = json.loads(record.read_text())
    except json.JSONDecodeError:
        return None
    return saved.get("metrics") if saved.get("key") == key else None


def standin_stage(params: Params, out: Path, source_fingerprint: str) -> dict[str, Any]:
    """The stage: a note when the stand-in is not the teacher; else the kept stand-in when its training key is
    unchanged; else a newly trained one, saved with its key and metrics beside it."""
    teacher_config: TeacherSettings = params.teacher
    if not standin_used(teacher_config):
        write_note(out, teacher_config)
        return {"trained": 0}
    settings = teacher_config.standin
    key = training_key(params.data, settings, params.split_seed, source_fingerprint)
    metrics = kept_metrics(out, key)
    if metrics is not None:
        log.info("the stand-in in %s was trained from the same data and settings: kept", out)
        return metrics
    teacher, metrics = standin(params.data, settings, params.split_seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / NOTE_FILE).unlink(missing_ok=True)
    teacher.save(out / STANDIN_FILE)
    (out / RECORD_FILE).write_text(json.dumps({"key": key, "metrics": metrics}, indent=2, sort_keys=True) + "\n")
    return metrics


def write_note(out_dir: Path, teacher: TeacherSettings) -> None:
    """What the stage writes when the stand-in is not the teacher (DVC needs its output to exist)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STANDIN_FILE).unlink(missing_ok=True)
    (out_dir / RECORD_FILE).unlink(missing_ok=True)
    model = f", teacher.model {teacher.model}" if isinstance(teacher, OnnxTeacherConfig) else ""
    what = f"teacher.kind {teacher.kind}{model}"
    (out_dir / NOTE_FILE).write_text(f"No stand-in teacher was trained: the teacher is yours ({what}).\n")


def main(argv: list[str] | None = None) -> None:
    p = parser("standin", __doc__)
    p.add_argument("--source", required=True, help="the data's fingerprint (the source stage's output)")
    p.add_argument("--out", required=True, help="the folder of the stand-in (models/standin)")

    def body(args: argparse.Namespace, params: Params) -> dict[str, Any]:
        return standin_stage(params, Path(args.out), Path(args.source).read_text())

    run("standin", p, body, argv)


if __name__ == "__main__":
    main()
