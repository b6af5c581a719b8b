"""Typed configuration: one pydantic model per section of `params.yaml`, `Params` for the whole file; the
defaults live here only (a contract test keeps `params.yaml` equal to them). Every stage validates the whole
file first, so a bad key, value or registered name fails before any teacher call, as one line:
`<dotted.parameter>: <what is allowed>, got <value>`. Limits guard memory. `teacher` is a union over the
registered backends (ckd/teachers/), told apart by `teacher.kind`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import Field, field_validator, model_validator

from ckd.data.download import DownloadConfig
from ckd.data.sources import MAX_CLASSES
from ckd.errors import CkdError, ConfigError
from ckd.schema import Section, validate_model
from ckd.teachers import TEACHERS
from ckd.teachers.base import StandinConfig, TeacherSettings, backend
from ckd.teachers.onnx_file import OnnxTeacherConfig

MAX_GRID = 64  # candidates (learning rates x list-valued method arguments), each trained for student.steps


def _strict(value: Any, kinds: tuple[type, ...] = (int, float)) -> bool:
    """An instance of `kinds`, never a bool (YAML's `true` is no number)."""
    return isinstance(value, kinds) and not isinstance(value, bool)


def _registered(registry: Any, name: str) -> str:
    if name not in registry:
        raise ValueError(f"must be a registered {registry.kind}: {', '.join(registry.names())}")
    return name


def _known_arguments(parameter: str, registry: Any, name: str, arguments: Mapping[str, Any], fixed: set[str]) -> None:
    """Refuse an argument the registered factory does not take (read without importing torch). A ConfigError,
    not a ValueError: pydantic lets it through as it is, naming the key."""
    if name not in registry or (parameters := registry.arguments(name)).any_keyword:
        return  # an unregistered name is reported on the name itself
    allowed = sorted(set(parameters.names) - fixed)
    unknown = next((key for key in arguments if key not in allowed), None)
    if unknown is not None:
        raise ConfigError(
            parameter,
            f"unknown {unknown!r}; {registry.kind} {name!r} takes {', '.join(allowed) or 'none'}, "
            f"got {dict(arguments)!r}",
        )


class DataConfig(Section):
    """Where the inputs come from (ckd/data: one module per source). `source` and `test_source` are a
    registered name ('digits'), a folder of images, or a file with a registered suffix (.npz, .csv, .parquet)."""

    source: str = "digits"
    # An optional labelled test set (same formats). With it the whole `source` is the pool; without it a
    # labelled source is split (test_size), and an unlabelled one is validated by teacher agreement.
    test_source: str | None = Field(None, min_length=1)
    test_size: int | float = 0.2  # a fraction in (0, 1) (fits any table), or a whole count
    split_seed: int | None = Field(None, ge=0, le=2**32 - 1)  # the pool/test split's seed; null: `seed`
    selection: str = "random"  # a registered selection strategy (ckd.data.selection)
    # How many pool inputs a run asks the teacher about (null: teacher.budget, the store's cap): two settings,
    # so that raising the cap to answer a selection does not also grow the selection.
    selection_size: int | None = Field(None, ge=1, le=10**9)
    use_labels: bool = True
    # Tables (.csv/.parquet): the label column (null: no labels) and the feature columns (null: every other
    # numeric column). A text table: `text` lists the text columns, joined by a space (ckd/data/text.py).
    label: str | None = Field("label", min_length=1)
    # The label column of a table data.test_source (null: data.label, or 'label' where data.label is null).
    test_label: str | None = Field(None, min_length=1)
    features: tuple[str, ...] | None = Field(None, min_length=1, max_length=100_000)
    text: tuple[str, ...] | None = Field(None, min_length=1, max_length=64)
    # Image folders: resize every image to [height, width] (null: all images must have one size).
    image_size: tuple[int, int] | None = None
    # The classes' names, in the order of the teacher's scores: needed for unlabelled sources; with integer
    # labels they name the indices; with named labels they fix the order.
    class_names: tuple[str, ...] | None = Field(None, min_length=2, max_length=MAX_CLASSES)
    # Stage `download` (ckd/data/download.py): {url, sha256, path (null: data.source)} fetched before `source`,
    # from an offline mirror folder first ($CKD_DATA_MIRROR, then data.mirror), by file name, checksum verified.
    download: DownloadConfig | None = None
    mirror: str | None = Field(None, min_length=1)

    @field_validator("text", "features", mode="before")
    @classmethod
    def _columns(cls, columns: Any) -> Any:
        if columns is None:
            return None
        if not (isinstance(columns, (list, tuple)) and columns and all(isinstance(c, str) and c for c in columns)):
            raise ValueError("must be null or a non-empty list of column names")
        if len(set(columns)) != len(columns):
            raise ValueError("must not name a column twice")
        return tuple(columns)

    @field_validator("class_names", mode="before")
    @classmethod
    def _class_names(cls, names: Any) -> Any:
        if names is None:
            return None
        if not (isinstance(names, (list, tuple)) and all(_strict(c, (str, int)) for c in names)):
            raise ValueError("must be null or a list of class names (strings)")
        if not 2 <= len(names) <= MAX_CLASSES:
            raise ValueError(f"must list 2 to {MAX_CLASSES} classes ({len(names)} given)")
        names = tuple(str(c) for c in names)
        if len(set(names)) != len(names):
            raise ValueError("must not name a class twice")
        return names

    @field_validator("image_size", mode="before")
    @classmethod
    def _image_size(cls, size: Any) -> Any:
        if size is None:
            return None
        if _strict(size, (int,)):
            size = [size, size]
        sides = size if isinstance(size, (list, tuple)) else ()
        if not (len(sides) == 2 and all(_strict(v, (int,)) and 1 <= v <= 4096 for v in sides)):
            raise ValueError("must be null, a side, or [height, width], each an integer in [1, 4096]")
        return tuple(size)

    @model_validator(mode="after")
    def _text_source(self) -> DataConfig:
        from ckd.data.text import is_text_source

        if self.text is not None and not is_text_source(self.source):
            raise ConfigError("data.text", f"needs a .csv or .parquet data.source, got {self.source!r}")
        if self.text is not None and self.label is None:
            raise ConfigError("data.label", "a text source needs its label column, got None")
        return self

    @field_validator("source", "test_source")
    @classmethod
    def _source(cls, source: str | None) -> str | None:
        from ckd.data.sources import check_source

        return None if source is None else check_source(source)

    @field_validator("test_size", mode="before")
    @classmethod
    def _test_size(cls, size: Any) -> Any:
        if not (_strict(size) and math.isfinite(size) and 0 < size <= 10**7 and (size < 1 or size == int(size))):
            raise ValueError("must be a fraction in (0, 1) or a whole count in [1, 10000000]")
        return size

    @field_validator("selection")
    @classmethod
    def _selection(cls, name: str) -> str:
        from ckd.data.selection import SELECTIONS

        return _registered(SELECTIONS, name)


# The union of every registered backend's model, told apart by `kind` (for the type checker: their base).
if TYPE_CHECKING:
    TeacherConfig = TeacherSettings
else:
    _BACKEND_MODELS = tuple(backend(name).config_model for name in TEACHERS.names())
    TeacherConfig = Annotated[Union[_BACKEND_MODELS], Field(discriminator="kind")]  # noqa: UP007 (built at run time)


class ComparativeConfig(Section):
    group_size: int = Field(1, ge=1, le=32)  # k positives and k negatives per group (1 = pairs)
    # negatives per group (null: group_size); group_size 2 with negatives 1 = the paper's 2+1 groups
    negatives: int | None = Field(None, ge=1, le=32)
    max_groups: int = Field(20_000, ge=1, le=1_000_000)  # the group table [G, 2k] is held in memory


class StudentConfig(Section):
    arch: str = "mlp"
    arch_args: dict[str, Any] = {"hidden": [64]}
    method: str = "ckd"
    method_args: dict[str, Any] = {}  # list values are a grid searched on validation
    lr: tuple[float, ...] = (3e-3, 1e-3)  # a number or a list of them, searched on validation
    steps: int = Field(2000, ge=1, le=1_000_000)
    batch_size: int = Field(64, ge=1, le=4096)  # samples, or groups of 2k members for group methods
    val_fraction: float = Field(0.2, gt=0, lt=1)
    eval_every: int = Field(100, ge=1, le=1_000_000)
    augment: Literal["auto", "none", "shift", "shift_flip", "corrupt"] = "auto"  # corrupt: tables, embeddings
    refit: bool = True
    model_selection: Literal["plateau", "best_step"] = "plateau"  # ckd/train.py says why plateau is the default
    average_last: int = Field(5, ge=1, le=1000)  # checkpoints averaged at the end with plateau (1 = the last one)
    unlabelled_weight: float = Field(1.0, ge=0, le=1000)  # FixMatch on never-queried pool inputs; 0 = off
    unlabelled_threshold: float = Field(0.95, ge=0, lt=1)
    # the pool term's targets: self (the student's own confident answer, FixMatch) or neighbours (the teacher's
    # answers on the k most similar queried inputs: label propagation; tables and embeddings)
    unlabelled_targets: Literal["self", "neighbours"] = "self"
    unlabelled_neighbours: int = Field(10, ge=1, le=1000)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads: auto (1 for small students, else the cores this process may use; ckd.runtime) or a count
    threads: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast in the forward pass; the weights stay fp32
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @field_validator("lr", mode="before")
    @classmethod
    def _lr(cls, value: Any) -> tuple[float, ...]:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not (1 <= len(values) <= MAX_GRID and all(_strict(v) and 0 < v <= 10 for v in values)):
            raise ValueError(f"must be a number in (0, 10] or a list of 1 to {MAX_GRID} of them")
        return tuple(float(v) for v in values)

    @field_validator("arch")
    @classmethod
    def _arch(cls, name: str) -> str:
        from ckd.students import STUDENTS

        return _registered(STUDENTS, name)

    @field_validator("method")
    @classmethod
    def _method(cls, name: str) -> str:
        from ckd.methods import METHODS

        return _registered(METHODS, name)

    @model_validator(mode="after")
    def _arguments(self) -> StudentConfig:
        from ckd.methods import METHODS
        from ckd.students import STUDENTS

        arch_fixed = {"sample_shape", "num_classes", "normalize"}  # what ckd.train passes, not the user
        _known_arguments("student.arch_args", STUDENTS, self.arch, self.arch_args, arch_fixed)
        method_fixed = {"num_classes", "teacher_var", "labelled"}
        _known_arguments("student.method_args", METHODS, self.method, self.method_args, method_fixed)
        grid = len(self.lr) * math.prod(len(v) for v in self.method_args.values() if isinstance(v, (list, tuple)))
        if grid > MAX_GRID:
            raise ConfigError(
                "student.method_args",
                f"the grid (student.lr x list values) must have at most {MAX_GRID} candidates, got {grid}",
            )
        return self


class ExportConfig(Section):
    opset: int = Field(17, ge=13, le=21)
    # The serving bundle (ckd/serving.py) and the int8 model (ckd/quantize.py).
    name: str = "ckd_student"  # the served model's name: models/serving/{triton/<name>,kserve,mlserver}
    probabilities: bool = True
    max_batch_size: int = Field(256, ge=1, le=65_536)  # Triton / MLServer batching limit
    storage_uri: str = Field("pvc://ckd-models/serving/triton", min_length=1)  # where KServe reads the bundle
    int8_calibration_samples: int = Field(512, ge=1, le=1_000_000)  # held in memory: bounded
    int8_per_channel: bool = True
    int8_calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}", name):
            raise ValueError("must be 1-63 letters, digits, '_', '.', '-' (a served model's name)")
        return name


class ValidateConfig(Section):
    min_accuracy: float = Field(0.85, ge=0, le=1)
    max_abs_diff: float = Field(1e-4, gt=0, le=1)
    latency_runs: int = Field(200, ge=1, le=100_000)
    evaluate_teacher: Literal["auto", "never"] = "auto"  # auto: only the stand-in teacher (calls apart)
    max_int8_drop: float = Field(0.01, ge=0, le=1)  # gate: ONNX fp32 accuracy - int8 accuracy


class Params(Section):
    """The whole of params.yaml."""

    model_config = {**Section.model_config, "validate_by_name": True, "validate_by_alias": True}

    seed: int = Field(0, ge=0, le=2**32 - 1)  # split, selection and groups
    data: DataConfig = DataConfig()
    teacher: TeacherConfig = OnnxTeacherConfig()
    comparative: ComparativeConfig = ComparativeConfig()
    student: StudentConfig = StudentConfig()
    export: ExportConfig = ExportConfig()
    # `validate` would shadow pydantic's BaseModel.validate: the attribute is `validation`.
    validation: ValidateConfig = Field(ValidateConfig(), alias="validate")

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, values: Any) -> Any:
        teacher = values.get("teacher") if isinstance(values, dict) else None
        if isinstance(teacher, dict) and "kind" not in teacher:
            values = {**values, "teacher": {"kind": "onnx", **teacher}}
        return values

    @model_validator(mode="after")
    def _fits_the_budget(self) -> Params:
        """What `build` and `train` will need of the queried samples, checked against `teacher.budget` (the
        most there can be) with their own rules, so that no stage pays for answers they would refuse."""
        from ckd.comparative import max_distinct_groups

        budget, group_size = self.teacher.budget, self.comparative.group_size
        if max_distinct_groups(budget, group_size) == 0:
            raise ConfigError(
                "comparative.group_size",
                f"{group_size} needs at least {2 * group_size} queried samples; teacher.budget is {budget}",
            )
        validation_split(budget, self.student.val_fraction)
        return self

    @property
    def split_seed(self) -> int:
        """The pool/test split's seed (`data.split_seed`, else `seed`); `seed` alone drives selection and groups."""
        return self.seed if self.data.split_seed is None else self.data.split_seed

    def as_dict(self) -> dict[str, Any]:
        """Plain data as in params.yaml (section `validate`, lists for tuples). Not `mode="json"`: that writes a
        non-finite float inside `method_args`/`arch_args` (a temperature of .inf) as None."""
        result: dict[str, Any] = _plain(self.model_dump(by_alias=True))
        return result


def validation_split(num_samples: int, val_fraction: float) -> tuple[int, int]:
    """(train, validation) sizes of `num_samples` queried samples (`ckd.train.split_rows`): at least one
    validation sample, and at least two left to train on."""
    count = max(1, int(round(val_fraction * num_samples)))
    if num_samples - count < 2:
        raise ConfigError(
            "student.val_fraction",
            f"{val_fraction} leaves fewer than 2 of {num_samples} queried samples for training "
            "(teacher.budget caps them)",
        )
    return num_samples - count, count


def check_runtime(params: Params) -> None:
    """What the params ask of this machine, checked by every stage (the first one before any teacher call):
    `student.device: cuda` needs a usable CUDA device. torch is imported only to answer that."""
    if params.student.device == "cuda":
        from ckd.runtime import torch_device

        torch_device("cuda")


def _plain(value: Any) -> Any:
    """Dicts and lists all the way down (a tuple becomes a list), every other value as it is."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def validate_all(params: Mapping[str, Any]) -> Params:
    """Validate a whole params mapping; a ConfigError names the first bad parameter."""
    if not isinstance(params, Mapping):
        raise ConfigError("params", f"must be a mapping of sections, got {type(params).__name__}")
    return validate_model(Params, dict(params))


def _refuse_duplicate_keys(node: yaml.Node | None, where: str = "") -> None:
    """A key given twice in one mapping is refused, as DVC does: PyYAML keeps the last silently, so a stage
    would run with a value the user did not mean."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            dotted = f"{where}.{key}" if where else key
            if key in seen:
                raise CkdError(f"{dotted}: given twice (line {key_node.start_mark.line + 1}); keep one")
            seen.add(key)
            _refuse_duplicate_keys(value_node, dotted)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{where}[{index}]")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """The raw mapping in a params file: plain YAML in UTF-8, no key given twice in one mapping."""
    path = Path(path)
    if not path.is_file():
        raise CkdError(f"{path}: parameters file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise CkdError(f"{path}: not UTF-8 (byte 0x{error.object[error.start]:02x} on line {line})") from None
    try:
        _refuse_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))  # None for an empty file
        params = yaml.safe_load(text) or {}
    except CkdError as error:
        raise CkdError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        raise CkdError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(params, dict):
        raise CkdError(f"{path}: must be a mapping of sections")
    return params


def load_config(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file (every stage does this first)."""
    return validate_all(load_params(path))


def section(params: Params, name: str) -> Any:
    return params.validation if name == "validate" else getattr(params, name)


def section_from_dict(name: str, values: Mapping[str, Any] | None) -> Any:
    """One section validated alone (the others at their defaults); errors name `<section>.<key>`."""
    return section(validate_all({name: dict(values or {})}), name)


def load_section(name: str, path: str | Path = "params.yaml") -> Any:
    return section(load_config(path), name)


def with_overrides(params: Params, overrides: Mapping[str, Any]) -> Params:
    """`params` with dotted keys set (as `dvc exp run -S` does), validated again."""
    values = params.as_dict()
    for dotted, value in overrides.items():
        node = values
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise ConfigError(dotted, "no such parameter section")
            node = node[key]
        node[leaf] = value
    return validate_all(values)


__all__ = [
    "Params",
    "DataConfig",
    "TeacherConfig",
    "TeacherSettings",
    "StandinConfig",
    "ComparativeConfig",
    "StudentConfig",
    "ExportConfig",
    "ValidateConfig",
    "validate_all",
    "validation_split",
    "check_runtime",
    "load_params",
    "load_config",
    "load_section",
    "section",
    "section_from_dict",
    "with_overrides",
]
