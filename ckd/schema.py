"""The base of every configuration model, and pydantic's errors turned into one line.

`ckd.config` holds the sections of `params.yaml`; a teacher backend's own model lives in the
backend's module (so adding a backend is one module plus one registry line), hence this small base
module that both import.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, TypeVar

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from ckd.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """A section of params.yaml: unknown keys refused, values typed strictly (YAML already gives types:
    `budget: "100"` or `refit: 1` is a mistake, not something to coerce), instances immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, protected_namespaces=(), validate_default=True)


_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")  # `user:password@` in a URL


def _short(value: Any, limit: int = 80) -> str:
    """The value as the error line shows it: credentials in a URL masked first, then cut to `limit`."""
    text = _CREDENTIALS.sub("***@", repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation may hold: `M`, `M | None`, `Annotated[Union[A, B], ...]`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    args = typing.get_args(field.annotation) if field is not None else ()
    return str(args[0]) if len(args) == 1 else None


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None, FieldInfo | None]:
    """Follow pydantic's error location through `model`: the dotted names (aliases, without the tags
    of discriminated unions), the model that holds the last name, and that name's field."""
    names: list[str] = []
    holder: type[BaseModel] | None = None
    field: FieldInfo | None = None
    current: type[BaseModel] | None = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if current is None:
            if isinstance(part, int):  # an item of a list; a string here names a branch of a union: dropped
                names.append(str(part))
            continue
        names.append(str(part))
        holder = current
        field = {(info.alias or name): info for name, info in current.model_fields.items()}.get(part)
        candidates = _models_in(field.annotation) if field is not None else []
        if len(candidates) > 1 and parts and any(_tag(m) == parts[0] for m in candidates):
            tag = parts.pop(0)
            current = next(m for m in candidates if _tag(m) == tag)
        else:
            current = candidates[0] if candidates else None
    return names, holder, field


_BOUNDS = (annotated_types.Ge, annotated_types.Gt, annotated_types.Le, annotated_types.Lt, annotated_types.Interval)


def _bounds(field: FieldInfo | None) -> str:
    return " and ".join(
        f"{symbol} {getattr(item, attribute)}"
        for item in (field.metadata if field is not None else [])
        if isinstance(item, _BOUNDS)
        for attribute, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if getattr(item, attribute, None) is not None
    )


def _kind_of(field: FieldInfo | None) -> str:
    annotation = field.annotation if field is not None else None
    args = set(typing.get_args(annotation)) or {annotation}
    if args <= {int, type(None)}:
        return "an integer"
    if args <= {int, float, type(None)}:
        return "a number"
    return "a value"


def describe(error: ValidationError, model: type[BaseModel]) -> ConfigError:
    """The first error of `error` as one line: `<dotted.parameter>: <what is allowed>, got <value>`."""
    first = error.errors(include_url=False)[0]
    kind, loc, value, ctx = first["type"], tuple(first["loc"]), first.get("input"), first.get("ctx", {})
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        loc = loc + (ctx.get("discriminator", "'kind'").strip("'"),)
    names, holder, field = _walk(model, loc)
    dotted = ".".join(names) or "params"
    nullable = field is not None and type(None) in typing.get_args(field.annotation)
    if kind == "extra_forbidden":
        allowed = sorted((info.alias or name) for name, info in holder.model_fields.items()) if holder else []
        tag = _tag(holder) if holder is not None else None
        where = ("section" if len(names) == 1 else "parameter") + (f" for kind {tag}" if tag else "")
        what = f"unknown {where}; allowed: {', '.join(allowed)}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        what = f"must be a registered backend: {ctx.get('expected_tags', '').replace(chr(39), '')}"
        value = ctx.get("tag", "missing")
    elif kind == "value_error":
        what = str(ctx["error"])
    elif kind == "missing":
        what, value = "is required", "nothing"
    elif kind == "literal_error":
        what = f"must be one of {ctx['expected'].replace(chr(39), '')}"
    elif kind in ("bool_type", "bool_parsing"):
        what = "must be true or false"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        what = "must be a mapping"
    elif kind in ("string_type", "string_too_short"):
        what = "must be a non-empty string" + (" or null" if nullable else "")
    elif kind in ("list_type", "too_short", "too_long"):
        items = f" of {ctx.get('min_length', 1)} to {ctx['max_length']} items" if "max_length" in ctx else ""
        what = f"must be a list{items}"
    elif kind.startswith(("int_", "float_", "greater_", "less_", "finite_")) or kind == "multiple_of":
        bounds = _bounds(field)
        what = f"must be {_kind_of(field)}" + (f" {bounds}" if bounds else "") + (" or null" if nullable else "")
    else:
        what = first["msg"][0].lower() + first["msg"][1:]
    return ConfigError(dotted, f"{what}, got {_short(value)}")


def validate_model(model: type[M], values: Any) -> M:
    """`model(**values)`, or a ConfigError naming the first bad parameter (one line)."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise describe(error, model) from None
