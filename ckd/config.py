"""Typed, validated configuration: one dataclass per section of `params.yaml`.

Each dataclass rejects out-of-range values in `__post_init__` with an error that names the
parameter (`teacher.budget`, not "budget") and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ckd.errors import CkdError, ConfigError


def _require(condition: bool, parameter: str, message: str) -> None:
    if not condition:
        raise ConfigError(parameter, message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _as_grid(value: Any) -> list:
    """A hyper-parameter given as a scalar or a list of candidates."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass(frozen=True)
class DataConfig:
    source: str = "digits"
    test_size: float = 500
    selection: str = "random"
    use_labels: bool = True

    def __post_init__(self) -> None:
        _require(isinstance(self.source, str) and self.source != "", "data.source",
                 "must be 'digits' or a path to an .npz file")
        _require(_is_number(self.test_size) and self.test_size > 0, "data.test_size",
                 f"must be a fraction in (0, 1) or a count >= 1, got {self.test_size!r}")
        _require(self.test_size < 1 or float(self.test_size).is_integer(), "data.test_size",
                 f"must be a fraction in (0, 1) or a whole count, got {self.test_size!r}")
        _require(isinstance(self.use_labels, bool), "data.use_labels", "must be true or false")


@dataclass(frozen=True)
class StandinConfig:
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 64
    channels: tuple[int, int] = (32, 64)
    hidden: int = 128

    def __post_init__(self) -> None:
        _require(_is_int(self.epochs) and self.epochs >= 1, "teacher.standin.epochs", "must be an integer >= 1")
        _require(_is_number(self.lr) and self.lr > 0, "teacher.standin.lr", "must be a number > 0")
        _require(_is_int(self.batch_size) and self.batch_size >= 1, "teacher.standin.batch_size",
                 "must be an integer >= 1")
        object.__setattr__(self, "channels", tuple(self.channels))


@dataclass(frozen=True)
class TeacherConfig:
    kind: str = "onnx"
    model: str = "models/teacher.onnx"
    budget: int = 100
    output: str | None = None
    scores: str = "logits"
    batch_size: int = 32
    store: str = "teacher_outputs"
    min_answered: float = 0.5
    options: Mapping[str, Any] = field(default_factory=dict)
    # An inference server speaking the Open Inference Protocol v2 (kind: http).
    url: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    concurrency: int = 1
    timeout_s: float = 30.0
    max_retries: int = 5
    rate_limit_per_s: float | None = None
    token_env: str | None = None
    verify_tls: bool = True
    standin: StandinConfig = field(default_factory=StandinConfig)

    def __post_init__(self) -> None:
        _require(_is_int(self.budget) and self.budget >= 1, "teacher.budget",
                 f"must be an integer >= 1 (teacher calls you are willing to pay for), got {self.budget!r}")
        _require(self.scores in ("logits", "probabilities"), "teacher.scores",
                 f"must be 'logits' or 'probabilities', got {self.scores!r}")
        _require(_is_int(self.batch_size) and self.batch_size >= 1, "teacher.batch_size",
                 f"must be an integer >= 1, got {self.batch_size!r}")
        _require(self.output is None or (isinstance(self.output, str) and self.output), "teacher.output",
                 "must be null (first float [batch, classes] output) or an output name")
        _require(isinstance(self.model, str) and self.model, "teacher.model", "must be a path")
        _require(isinstance(self.options, Mapping), "teacher.options", "must be a mapping")
        _require(_is_number(self.min_answered) and 0 < self.min_answered <= 1, "teacher.min_answered",
                 f"must be a fraction in (0, 1], got {self.min_answered!r}")
        _require(_is_int(self.concurrency) and 1 <= self.concurrency <= 64, "teacher.concurrency",
                 f"must be an integer in [1, 64], got {self.concurrency!r}")
        _require(_is_number(self.timeout_s) and self.timeout_s > 0, "teacher.timeout_s",
                 f"must be a number of seconds > 0, got {self.timeout_s!r}")
        _require(_is_int(self.max_retries) and self.max_retries >= 0, "teacher.max_retries",
                 f"must be an integer >= 0, got {self.max_retries!r}")
        _require(self.rate_limit_per_s is None or (_is_number(self.rate_limit_per_s) and self.rate_limit_per_s > 0),
                 "teacher.rate_limit_per_s", "must be null (no limit) or calls per second > 0")
        _require(isinstance(self.verify_tls, bool), "teacher.verify_tls", "must be true or false")
        _require(self.token_env is None or (isinstance(self.token_env, str) and self.token_env.isidentifier()),
                 "teacher.token_env", "must be null or the NAME of an environment variable (never the token itself)")
        if self.kind == "http":
            _require(isinstance(self.url, str) and self.url.startswith(("http://", "https://")), "teacher.url",
                     f"must be an http:// or https:// URL when teacher.kind is http, got {self.url!r}")
            _require(isinstance(self.model_name, str) and self.model_name, "teacher.model_name",
                     "must name the served model when teacher.kind is http")


@dataclass(frozen=True)
class ComparativeConfig:
    group_size: int = 1
    max_groups: int = 20000

    def __post_init__(self) -> None:
        _require(_is_int(self.group_size) and self.group_size >= 1, "comparative.group_size",
                 f"must be an integer >= 1 (1 = pairs), got {self.group_size!r}")
        _require(_is_int(self.max_groups) and self.max_groups >= 1, "comparative.max_groups",
                 f"must be an integer >= 1, got {self.max_groups!r}")


@dataclass(frozen=True)
class StudentConfig:
    arch: str = "mlp"
    arch_args: Mapping[str, Any] = field(default_factory=lambda: {"hidden": [64]})
    method: str = "ckd"
    method_args: Mapping[str, Any] = field(default_factory=dict)
    lr: Any = (3e-3, 1e-3)
    steps: int = 2000
    batch_size: int = 64
    val_fraction: float = 0.2
    eval_every: int = 100
    augment: str = "auto"
    refit: bool = True
    unlabelled_weight: float = 0.0
    unlabelled_threshold: float = 0.95
    device: str = "auto"
    threads: Any = "auto"
    precision: str = "fp32"
    seed: int = 0

    def __post_init__(self) -> None:
        lrs = _as_grid(self.lr)
        _require(lrs and all(_is_number(v) and v > 0 for v in lrs), "student.lr",
                 f"must be a number > 0 or a list of them, got {self.lr!r}")
        object.__setattr__(self, "lr", tuple(float(v) for v in lrs))
        _require(_is_int(self.steps) and self.steps >= 1, "student.steps", f"must be an integer >= 1, got {self.steps!r}")
        _require(_is_int(self.batch_size) and self.batch_size >= 1, "student.batch_size",
                 f"must be an integer >= 1, got {self.batch_size!r}")
        _require(_is_number(self.val_fraction) and 0 < self.val_fraction < 1, "student.val_fraction",
                 f"must be in (0, 1), got {self.val_fraction!r}")
        _require(_is_int(self.eval_every) and self.eval_every >= 1, "student.eval_every", "must be an integer >= 1")
        _require(self.augment in ("auto", "none", "shift", "shift_flip"), "student.augment",
                 f"must be one of auto, none, shift, shift_flip; got {self.augment!r}")
        _require(self.device in ("auto", "cpu", "cuda"), "student.device",
                 f"must be auto, cpu or cuda; got {self.device!r}")
        _require(self.threads == "auto" or (_is_int(self.threads) and self.threads >= 1), "student.threads",
                 f"must be 'auto' or an integer >= 1, got {self.threads!r}")
        _require(self.precision in ("fp32", "bf16"), "student.precision",
                 f"must be fp32 or bf16 (autocast; the weights stay fp32), got {self.precision!r}")
        _require(isinstance(self.refit, bool), "student.refit", "must be true or false")
        _require(_is_number(self.unlabelled_weight) and self.unlabelled_weight >= 0, "student.unlabelled_weight",
                 f"must be a number >= 0 (0 = off), got {self.unlabelled_weight!r}")
        _require(_is_number(self.unlabelled_threshold) and 0 <= self.unlabelled_threshold < 1,
                 "student.unlabelled_threshold", f"must be in [0, 1), got {self.unlabelled_threshold!r}")
        _require(_is_int(self.seed), "student.seed", "must be an integer")
        _require(isinstance(self.method_args, Mapping), "student.method_args", "must be a mapping")
        _require(isinstance(self.arch_args, Mapping), "student.arch_args", "must be a mapping")


@dataclass(frozen=True)
class ExportConfig:
    opset: int = 17
    # The serving bundle (ckd/serving.py) and the int8 model (ckd/quantize.py).
    name: str = "ckd_student"
    probabilities: bool = True
    max_batch_size: int = 256
    storage_uri: str = "pvc://ckd-models/serving/triton"
    int8_calibration_samples: int = 512
    int8_per_channel: bool = True
    int8_calibration_method: str = "minmax"

    def __post_init__(self) -> None:
        _require(_is_int(self.opset) and 13 <= self.opset <= 21, "export.opset",
                 f"must be an integer in [13, 21], got {self.opset!r}")
        _require(isinstance(self.name, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}", self.name),
                 "export.name", f"must be 1-63 letters, digits, '_', '.', '-' (a served model's name), "
                 f"got {self.name!r}")
        _require(isinstance(self.probabilities, bool), "export.probabilities", "must be true or false")
        _require(_is_int(self.max_batch_size) and self.max_batch_size >= 1, "export.max_batch_size",
                 f"must be an integer >= 1, got {self.max_batch_size!r}")
        _require(isinstance(self.storage_uri, str) and self.storage_uri != "", "export.storage_uri",
                 "must be the URI KServe reads the Triton repository from (pvc://, s3://, gs://, ...)")
        _require(_is_int(self.int8_calibration_samples) and self.int8_calibration_samples >= 1,
                 "export.int8_calibration_samples", f"must be an integer >= 1, got {self.int8_calibration_samples!r}")
        _require(isinstance(self.int8_per_channel, bool), "export.int8_per_channel", "must be true or false")
        _require(self.int8_calibration_method in ("minmax", "entropy", "percentile"), "export.int8_calibration_method",
                 f"must be minmax, entropy or percentile; got {self.int8_calibration_method!r}")


@dataclass(frozen=True)
class ValidateConfig:
    min_accuracy: float = 0.85
    max_abs_diff: float = 1e-4
    latency_runs: int = 200
    evaluate_teacher: str = "auto"
    max_int8_drop: float = 0.01

    def __post_init__(self) -> None:
        _require(_is_number(self.max_int8_drop) and 0 <= self.max_int8_drop <= 1, "validate.max_int8_drop",
                 f"must be in [0, 1] (accuracy points lost by int8, as a fraction), got {self.max_int8_drop!r}")
        _require(_is_number(self.min_accuracy) and 0 <= self.min_accuracy <= 1, "validate.min_accuracy",
                 f"must be in [0, 1], got {self.min_accuracy!r}")
        _require(_is_number(self.max_abs_diff) and self.max_abs_diff > 0, "validate.max_abs_diff",
                 f"must be a number > 0, got {self.max_abs_diff!r}")
        _require(_is_int(self.latency_runs) and self.latency_runs >= 1, "validate.latency_runs",
                 "must be an integer >= 1")
        _require(self.evaluate_teacher in ("auto", "never"), "validate.evaluate_teacher",
                 "must be 'auto' (only the stand-in teacher) or 'never'")


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "teacher": TeacherConfig,
    "comparative": ComparativeConfig,
    "student": StudentConfig,
    "export": ExportConfig,
    "validate": ValidateConfig,
}
NESTED: dict[tuple[str, str], type] = {("teacher", "standin"): StandinConfig}


def section_from_dict(name: str, values: Mapping[str, Any] | None, cls: type | None = None):
    """Build a section's dataclass, rejecting unknown keys with the allowed ones."""
    cls = cls or SECTIONS[name]
    values = dict(values or {})
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}", f"unknown parameter; allowed: {', '.join(sorted(allowed))}")
    for key, nested_cls in NESTED.items():
        if key[0] == name and key[1] in values and isinstance(values[key[1]], Mapping):
            values[key[1]] = section_from_dict(f"{name}.{key[1]}", values[key[1]], nested_cls)
    return cls(**values)


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CkdError(f"{path}: parameters file not found")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise CkdError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(params, dict):
        raise CkdError(f"{path}: must be a mapping of sections")
    return params


def load_section(name: str, path: str | Path = "params.yaml"):
    """Load one section of params.yaml into its dataclass (each stage reads only its own)."""
    return section_from_dict(name, load_params(path).get(name))


def load_seed(path: str | Path = "params.yaml") -> int:
    seed = load_params(path).get("seed", 0)
    _require(_is_int(seed) and seed >= 0, "seed", f"must be an integer >= 0, got {seed!r}")
    return seed


def validate_all(params: Mapping[str, Any]) -> None:
    """Check every section of a params mapping (used by the flow before any stage runs)."""
    for name in SECTIONS:
        section_from_dict(name, params.get(name))
    seed = params.get("seed", 0)
    _require(_is_int(seed) and seed >= 0, "seed", f"must be an integer >= 0, got {seed!r}")
