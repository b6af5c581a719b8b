"""The teacher protocol every backend implements, and the registry that builds them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast

import numpy as np
from pydantic import Field, field_validator

from ckd.errors import ConfigError, TeacherError
from ckd.extras import installed, missing
from ckd.registry import Registry
from ckd.schema import Section


class StandinConfig(Section):
    """`teacher.standin`: the embedded default's stand-in teacher (the `teacher` stage), whatever the backend."""

    epochs: int = Field(40, ge=1, le=1000)
    lr: float = Field(1e-3, gt=0, le=1)
    batch_size: int = Field(64, ge=1, le=8192)  # a batch lives in memory: bounded
    channels: tuple[int, int] = (32, 64)
    hidden: int = Field(128, ge=1, le=8192)

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: Any) -> tuple[int, int]:
        if not (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 1024 for c in value)
        ):
            raise ValueError("must be two integers in [1, 1024]")
        return tuple(value)


class TeacherSettings(Section):
    """What every backend shares. Each backend subclasses it with `kind: Literal["<name>"]` and its own
    fields, and names the subclass as its `config_model`; `ckd.config` makes the union of them."""

    kind: str
    # The ONNX file of the `onnx` backend (and any built on it); the default is the demo's stand-in, which the
    # `standin` stage trains only when this names it. Other backends ignore it.
    model: str = Field("models/standin/teacher.onnx", min_length=1)
    budget: int = Field(100, ge=1, le=10_000_000, description="teacher calls you are willing to pay for")
    output: str | None = Field(None, min_length=1)
    scores: Literal["logits", "probabilities"] = "logits"
    batch_size: int = Field(32, ge=1, le=65_536)  # samples per call, held in memory: bounded
    # Paid answers and the purse (ckd.store): a path (SQLite; relative = from the main repository's root, shared by
    # every workspace and DVC experiment) or postgresql://USER@HOST:PORT/DB. `identity`: null, or a label declaring
    # a new teacher (appended to the derived identity: answers of its own, the same purse).
    store: str = Field("teacher_outputs", min_length=1)
    identity: str | None = Field(None, min_length=1)
    min_answered: float = Field(0.5, gt=0, le=1)
    standin: StandinConfig = StandinConfig()

    def files(self) -> tuple[str, ...]:
        """The files whose content is the teacher: the `teacher` stage hashes them, so `query` runs again when
        one changes (a server's or a model's name is in the params, which `query` depends on already)."""
        return ()

    @field_validator("store")
    @classmethod
    def _store(cls, store: str) -> str:
        if not store.strip() or (
            "://" in store and not store.startswith(("postgresql://", "postgresql+psycopg://", "sqlite:///"))
        ):
            raise ValueError("must be a path (SQLite) or postgresql://USER@HOST:PORT/DB")
        if store.startswith("postgresql") and not installed("psycopg"):
            raise ValueError(missing("psycopg", "a PostgreSQL store"))
        return store


S = TypeVar("S", bound=TeacherSettings)


class Teacher(Protocol):
    """A paid black box. `identity` keys its stored outputs: a new teacher never mixes with an old one."""

    identity: str  # canonical: what the teacher computes, not how it is reached (see README, "identity")
    num_classes: int | None  # known before any call when the backend declares it, else None

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        """Raise TeacherError, before any paid call, if inputs of this shape cannot be sent."""

    def predict(self, x: np.ndarray) -> np.ndarray | ScoredAnswer:
        """Scores [batch, classes] for raw inputs [batch, *sample_shape] (texts: [batch] strings); each call is
        paid (a backend may set `batch_limit`: inputs per call). Raises `TeacherRefused` for a definite refusal
        (nothing computed), `OutcomeUnknown` when it may have been computed but no answer came back."""


@dataclass
class ScoredAnswer:
    """Scores plus what the call used (`usage`: e.g. prompt_tokens, completion_tokens, summed over the batch)
    and how the scores were made (`sources`: per sample, e.g. 'logprobs' or 'onehot')."""

    scores: np.ndarray
    usage: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


class TeacherRefused(Exception):
    """A definite refusal: the teacher said no, nothing was computed, nothing is billed."""


class AnswerUnusable(Exception):
    """An answer came back (so it was computed and is paid) but cannot be used; `raw` is kept apart."""

    def __init__(self, message: str, raw: str = "", usage: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.usage = usage or {}  # what the unusable answer cost (tokens): paid all the same


class OutcomeUnknown(Exception):
    """The request left and no answer came back: it may have been computed, so it stays counted."""


# A scikit-learn classifier converted by skl2onnx answers, by default, a sequence of {class: probability} maps
# (ZipMap), not the float tensor [batch, classes] the store keeps: refused before any call, with the fix.
ZIPMAP_ADVICE = (
    "a classifier converted by skl2onnx answers maps (ZipMap) by default: convert it again with "
    "options={'zipmap': False} (its probabilities are then a float tensor [batch, classes])"
)


class DeclaredModel:
    """A backend whose model declares its input and scores output before any call (an ONNX file, a v2 server):
    `where` names the model in messages; a batch is reshaped to the input's sample dims and cast to its dtype."""

    where: str
    input_name: str
    input_dtype: Any
    sample_dims: list[Any]
    output_name: str
    num_classes: int | None

    def check_fits(self, sample_shape: tuple[int, ...], num_classes: int) -> None:
        """The checks every such backend makes from its declared input and output, before any paid call."""
        dims = self.sample_dims
        if not all(isinstance(d, int) and d > 0 for d in dims):
            raise TeacherError(
                f"{self.where}: teacher input {self.input_name} must have fixed sizes after the batch axis, has {dims}"
            )
        wanted, have = int(np.prod(dims)), int(np.prod(sample_shape))
        if wanted != have:
            raise TeacherError(
                f"{self.where}: teacher input {self.input_name} takes {wanted} values per sample "
                f"{tuple(dims)}, the data has {have} {tuple(sample_shape)}"
            )
        if self.num_classes is not None and self.num_classes != num_classes:
            raise TeacherError(
                f"{self.where}: teacher output {self.output_name} has {self.num_classes} classes, "
                f"the data has {num_classes}"
            )

    def _batch(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.reshape(len(x), *self.sample_dims).astype(self.input_dtype))


def settings_of(model: type[S], values: dict[str, Any]) -> S:
    """A backend's constructor keywords as its settings model, with its defaults (unvalidated: params are
    validated when loaded); a keyword that names none of its fields is a TypeError, as for any function."""
    unknown = sorted(set(values) - set(model.model_fields))
    if unknown:
        raise TypeError(f"{model.__name__}: unexpected keyword arguments {', '.join(unknown)}")
    return cast(S, model.model_construct(**values))


TEACHERS: Registry[Teacher] = Registry("teacher backend", "teacher.kind")


class TeacherBackend(Protocol):
    """What `TEACHERS` holds under a kind: the backend's class, with its params model and its builder."""

    config_model: type[TeacherSettings]

    def from_config(self, config: Any) -> Teacher: ...


def backend(kind: str) -> TeacherBackend:
    """The registered backend class of `teacher.kind` (an unknown kind: one line listing the registered ones)."""
    return cast(TeacherBackend, TEACHERS.get(kind))


def build_teacher(config: TeacherSettings) -> Teacher:
    """Build the backend `config.kind` through its `from_config`. A `teacher.identity` label declares a new
    teacher: it is appended to the derived identity, so it gets answers of its own."""
    teacher = backend(config.kind).from_config(config)
    if config.identity:
        teacher.identity = f"{teacher.identity}#{config.identity}"
    return teacher


CLASS_NAMES_KEY = "class_names"  # ONNX metadata_props / v2 metadata `parameters` key (ckd's export writes it)


def parse_class_names(value: Any, where: str) -> tuple[str, ...] | None:
    """A declaration of the classes: a list, a JSON list, or comma-separated names (None: nothing declared)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [name.strip() for name in value.split(",")]
    if not (isinstance(value, (list, tuple)) and len(value) >= 2 and all(isinstance(v, (str, int)) for v in value)):
        raise TeacherError(f"{where}: {CLASS_NAMES_KEY} must list 2 or more class names, got {value!r}"[:300])
    names = tuple(str(v) for v in value)
    if len(set(names)) != len(names) or not all(names):
        raise TeacherError(f"{where}: {CLASS_NAMES_KEY} must name each class once, got {list(names)!r}"[:300])
    return names


def declared_class_names(config: TeacherSettings) -> tuple[str, ...] | None:
    """The classes the teacher declares, in the order of its scores, learnt without a paid call:
    `teacher.label_words` (an LLM), an ONNX file's metadata `class_names`, a v2 server's model metadata
    `parameters.class_names` (the model's or its scores output's). None where the teacher declares none."""
    words = getattr(config, "label_words", None)
    if words:
        return tuple(words)
    teacher = build_teacher(config)  # ONNX: the file's session; http: readiness and metadata, no inference
    names = getattr(teacher, "class_names", None)
    if names is not None and teacher.num_classes is not None and len(names) != teacher.num_classes:
        raise TeacherError(
            f"teacher.model: the teacher declares {len(names)} class names for {teacher.num_classes} scores"
        )
    return names


def classes_for_unlabelled(config: TeacherSettings, missing: Exception) -> tuple[str, ...]:
    """`data.class_names` for a source without labels: the teacher's declared classes, or one line naming
    both places the classes could come from."""
    names = declared_class_names(config)
    if names is None:
        raise ConfigError(
            "data.class_names",
            f"{missing}, and the {config.kind} teacher declares none (ONNX metadata '{CLASS_NAMES_KEY}', a v2 "
            f"server's metadata parameters.{CLASS_NAMES_KEY}, or teacher.label_words); list them in the order "
            "of the teacher's scores",
        )
    return names
