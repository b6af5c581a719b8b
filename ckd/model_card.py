"""The model card `validate` writes beside the student: where it came from, what it cost, how well and how
fast it runs, and the exact command that makes it again (`models/model_card.json` and `.md`)."""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ckd.config import DataConfig
from ckd.data import load_source
from ckd.fingerprint import HashCache, files_of
from ckd.teachers.onnx_file import file_sha256
from ckd.validate import score_keys

PROJECT = Path(__file__).resolve().parents[1]
_CALL_KEYS = (
    "calls_spent_total",
    "calls_this_run",
    "budget",
    "teacher_outputs",
    "teacher_lost",
    "teacher_unanswered",
    "teacher_eval_calls",
)


def data_identity(source: str, files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The data source and a SHA-256: of the file, of a folder's files (names and SHA-256), or of the arrays of
    an embedded source (`digits`). `files`: the `source` stage's fingerprint of them (nothing read again)."""
    path = Path(source)
    if path.is_file() or path.is_dir():
        files = files if files is not None else files_of(source, "data.source", HashCache(None))
        if path.is_file():
            return {"source": source, "sha256": files[source], "hash_of": "file"}
        digest = hashlib.sha256()
        for name, sha in sorted(files.items()):
            digest.update(f"{name}\0{sha}\0".encode())
        return {"source": source, "sha256": digest.hexdigest(), "hash_of": "folder (file names and contents)"}
    dataset = load_source(source, DataConfig())  # an embedded source: no table or folder options apply
    digest = hashlib.sha256(np.ascontiguousarray(dataset.x).tobytes())
    if dataset.y is not None:
        digest.update(np.ascontiguousarray(dataset.y).tobytes())
    return {"source": source, "sha256": digest.hexdigest(), "hash_of": "arrays x, y (embedded source)"}


def teacher_identity(teacher: Mapping[str, Any], is_standin: bool) -> dict[str, Any]:
    """Which teacher answered: its file's SHA-256 or its server address (never a token: only its variable)."""
    identity = {"kind": teacher.get("kind", "onnx"), "scores": teacher.get("scores"), "standin": is_standin}
    if teacher.get("url") is not None:  # a served teacher (http, openai): its address and model
        identity |= {key: teacher.get(key) for key in ("url", "model_name", "model_version")}
    else:
        model = Path(str(teacher.get("model")))
        identity.update(model=str(model), sha256=file_sha256(model) if model.is_file() else None)
    return identity


def git_commit(cwd: Path = PROJECT) -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def reproduce_command(params: Mapping[str, Any], commit: str | None) -> str:
    """`dvc exp run -S ...` with every parameter set explicitly, at the commit that made the model."""
    settings = []

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key in sorted(value):
                flatten(f"{prefix}.{key}" if prefix else str(key), value[key])
        else:
            settings.append(f"-S '{prefix}={json.dumps(value)}'")

    flatten("", dict(params))
    checkout = f"git checkout {commit} && " if commit else ""
    return f"{checkout}dvc exp run {' '.join(settings)}"


def build_card(
    metrics: Mapping[str, Any],
    checkpoint: Mapping[str, Any],
    params: Mapping[str, Any],
    train_metrics: Mapping[str, Any],
    is_standin: bool,
    artifacts: Mapping[str, str],
    data_files: Mapping[str, str] | None = None,
    input_scale: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`data_files`: the `source` stage's fingerprint of the data files (else they are hashed here);
    `input_scale`: what the served model's input takes (`ckd.serving.input_scale`, from the ONNX metadata)."""
    git = git_commit()
    data = params.get("data", {})
    return {
        "name": params.get("export", {}).get("name", "ckd_student"),
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "teacher": teacher_identity(params.get("teacher", {}), is_standin),
        "teacher_calls": {k: metrics[k] for k in _CALL_KEYS},
        "data": {
            **data_identity(data.get("source", "digits"), data_files),
            "test_source": data.get("test_source"),
            "text": data.get("text"),  # a text source: the whole text model, int8 dynamic
            "test_size": metrics.get("test_size", 0),
            "seed": params.get("seed", 0),
        },
        "method": {
            **{k: checkpoint[k] for k in ("method", "chosen", "arch", "arch_args", "teacher_samples")},
            "student_params": params.get("student", {}),
            "comparative_params": params.get("comparative", {}),
            "val_accuracy": train_metrics.get("val_accuracy"),
            "best_step": train_metrics.get("best_step"),
        },
        "accuracy": {
            "measure": "test accuracy" if "test_accuracy" in metrics else "agreement with the teacher",
            **{runtime: metrics[key] for runtime, key in zip(("pytorch", "onnx", "int8"), score_keys(metrics))},
            "teacher": metrics.get("teacher_test_accuracy"),
            "samples": metrics.get("test_size", metrics.get("agreement_size")),
        },
        "parity": {k: metrics[k] for k in ("onnx_max_abs_diff", "int8_argmax_agreement", "int8_max_abs_diff")},
        "latency_ms": {
            k.removeprefix("latency_ms_"): metrics[k] for k in sorted(metrics) if k.startswith("latency_ms")
        },
        "input": dict(input_scale) if input_scale else None,
        "artifacts": dict(artifacts),
        "git": git,
        "reproduce": reproduce_command(params, git["commit"]),
    }


def card_markdown(card: Mapping[str, Any]) -> str:
    acc, par, cost, data = card["accuracy"], card["parity"], card["teacher_calls"], card["data"]
    teacher, method, git = card["teacher"], card["method"], card["git"]
    who = (
        f"`{teacher['url']}` model `{teacher['model_name']}`"
        if teacher.get("url") is not None
        else f"`{teacher.get('model')}` (SHA-256 `{teacher.get('sha256')}`)"
    )
    runtimes = {
        "PyTorch": acc["pytorch"],
        "ONNX Runtime fp32": acc["onnx"],
        f"ONNX Runtime int8 ({'dynamic' if data.get('text') else 'QDQ'})": acc["int8"],
        **({"teacher (stand-in)": acc["teacher"]} if acc.get("teacher") is not None else {}),
    }
    accuracy = (
        f"Accuracy on {acc['samples']} held-out test samples"
        if acc["measure"] == "test accuracy"
        else f"Agreement with the teacher on {acc['samples']} queried samples held out of training "
        "(no labelled test set: data.test_source is not set)"
    )
    sections = {
        "Origin": [
            f"- Teacher: {teacher['kind']} {who}{' (the stand-in teacher)' if teacher['standin'] else ''}; "
            f"scores: {teacher['scores']}.",
            f"- Teacher calls spent in the store in total: {cost['calls_spent_total']} of a budget of "
            f"{cost['budget']} ({cost['calls_this_run']} by the last query run; outputs stored "
            f"{cost['teacher_outputs']}, lost {cost['teacher_lost']}); evaluation calls apart from the budget: "
            f"{cost['teacher_eval_calls']}.",
            f"- Data: `{data['source']}`, SHA-256 `{data['sha256']}` ({data['hash_of']}); split seed {data['seed']}.",
            f"- Method: `{method['method']}`, student `{method['arch']}` {json.dumps(method['arch_args'])}, chosen "
            f"on validation {json.dumps(method['chosen'])} (validation accuracy {method['val_accuracy']}, step "
            f"{method['best_step']}), trained on {method['teacher_samples']} teacher-answered samples.",
            f"- Student parameters: `{json.dumps(method['student_params'], sort_keys=True)}`.",
        ],
        accuracy: [
            f"| runtime | {acc['measure']} |",
            "|---|---|",
            *(f"| {k} | {v:.4f} |" for k, v in runtimes.items()),
        ],
        "Parity": [
            f"- max |logit difference| PyTorch vs ONNX Runtime: {par['onnx_max_abs_diff']:.3g}",
            f"- int8 vs fp32 ONNX: argmax agreement {par['int8_argmax_agreement']:.4f}, max |logit difference| "
            f"{par['int8_max_abs_diff']:.3g}",
        ],
        "Latency (median ms per call, 1 thread)": [
            "| measure | ms |",
            "|---|---|",
            *(f"| {k} | {v:.4f} |" for k, v in card["latency_ms"].items()),
        ],
        "Artifacts": [f"- {k}: `{v}`" for k, v in card["artifacts"].items()],
        "Reproduce": [
            f"At commit `{git['commit']}`{' (with uncommitted changes)' if git['dirty'] else ''}:",
            "",
            "```bash",
            card["reproduce"],
            "```",
        ],
    }
    if scale := card.get("input"):
        seen = scale.get("observed_min") is not None
        span = f" (the pool's values span {scale['observed_min']:g} to {scale['observed_max']:g})" if seen else ""
        sections["Origin"].append(
            f"- Input `{scale['input']}`: {scale['values']}{span}; the graph applies {scale['scaling_in_graph']}. "
            "The same note is in `models/serving/input.json` and in the ONNX file's metadata (`input_scale`)."
        )
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"Date: {card['date']}. Written by `dvc repro` (stage `validate`); the same figures are in "
        "`models/model_card.json`.",
    ]
    for title, body in sections.items():
        lines += ["", f"## {title}", "", *body]
    return "\n".join(lines) + "\n"


def write_model_card(card: Mapping[str, Any], json_path: str | Path, md_path: str | Path) -> None:
    for path in (Path(json_path), Path(md_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")
    Path(md_path).write_text(card_markdown(card))
