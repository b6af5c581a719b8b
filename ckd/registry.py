"""One generic registry for methods, teachers, students and selection strategies.

An entry is registered in one of two ways:

- eagerly: `@REGISTRY.register("name")` on the factory, in a module its package imports;
- lazily: one line naming where the factory lives, `"name": "package.module:Factory"`, given to the
  registry where it is made. Its module is imported on the first `get`/`build`.

So a process can list the names and check arguments (`arguments`) without importing what a lazy factory
needs: validating `student.method`/`student.method_args` imports no torch.

`arguments` reads a lazy factory's parameter names from its module's source (`ast`, nothing executed),
following base classes defined in that module or imported with `from X import Y`. Where the source cannot
answer, it imports the module and asks `inspect`: never wrong, only slower.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ckd.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Arguments:
    """A factory's keyword parameters: their names, and whether it takes any keyword (`**kwargs`)."""

    names: tuple[str, ...]
    any_keyword: bool = False


class Registry(Generic[T]):
    """Maps a name to a factory; `build` names the parameter and lists what is registered."""

    def __init__(self, kind: str, parameter: str, lazy: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.parameter = parameter
        self._factories: dict[str, Callable[..., T]] = {}
        self._lazy = dict(lazy or {})
        for name, target in self._lazy.items():
            if ":" not in target:
                raise ValueError(f"{kind} {name!r}: a lazy entry is 'package.module:Factory', got {target!r}")

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories or name in self._lazy:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted({*self._factories, *self._lazy})

    def target(self, name: str) -> str | None:
        """A lazy entry's 'package.module:Factory' (None for an eager one)."""
        return self._lazy.get(name)

    def get(self, name: str) -> Callable[..., T]:
        if name not in self:
            raise ConfigError(
                self.parameter,
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}",
            )
        if name not in self._factories:
            module, attribute = self._lazy[name].split(":")
            self._factories[name] = getattr(importlib.import_module(module), attribute)
        return self._factories[name]

    def build(self, name: str, **kwargs: Any) -> T:
        factory = self.get(name)
        try:
            return factory(**kwargs)
        except TypeError as error:
            raise ConfigError(self.parameter, f"{self.kind} {name!r}: {error}") from None

    def arguments(self, name: str) -> Arguments:
        """The factory's parameter names, without importing a lazy entry's module where its source tells."""
        if name not in self._factories and name in self._lazy:
            module, attribute = self._lazy[name].split(":")
            found = _source_arguments(module, attribute)
            if found is not None:
                return found
        return _inspect_arguments(self.get(name))

    def __contains__(self, name: object) -> bool:
        return name in self._factories or name in self._lazy


def _inspect_arguments(factory: Callable[..., Any]) -> Arguments:
    parameters = inspect.signature(factory).parameters.values()
    return Arguments(
        tuple(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)),
        any(p.kind is p.VAR_KEYWORD for p in parameters),
    )


def _source_arguments(module: str, attribute: str, *, depth: int = 0) -> Arguments | None:
    """`attribute`'s parameters read from `module`'s source: a function's, or a class's `__init__` (its
    own, else the first base's that has one). None when the source does not say (then ask `inspect`)."""
    tree = _parse(module) if depth <= 8 else None  # deeper: a chain of bases too long to follow
    if tree is None:
        return None
    node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == attribute), None)
    if isinstance(node, ast.FunctionDef):
        return _function_arguments(node, skip_first=False)
    if not isinstance(node, ast.ClassDef) or not all(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "register"
        for d in node.decorator_list
    ):
        return None  # not found here (a re-export, an assignment), or a decorator other than `@X.register(...)`
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        return _function_arguments(init, skip_first=True)
    if any(isinstance(n, ast.FunctionDef) and n.name == "__new__" for n in node.body):
        return None
    if not node.bases and not node.keywords:
        return Arguments(())  # no base, no __init__: takes nothing
    if len(node.bases) != 1 or node.keywords or not isinstance(node.bases[0], ast.Name):
        return None  # several bases (the MRO decides), a metaclass, or e.g. nn.Module: ask inspect
    where = _defined_in(tree, module, node.bases[0].id)
    return None if where is None else _source_arguments(*where, depth=depth + 1)


def _defined_in(tree: ast.Module, module: str, name: str) -> tuple[str, str] | None:
    """Where `name`, as used in `module`, is defined: (module, attribute)."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, name
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return node.module, alias.name
    return None


def _function_arguments(node: ast.FunctionDef, skip_first: bool) -> Arguments:
    positional = [a.arg for a in (*node.args.posonlyargs, *node.args.args)][int(skip_first) :]
    return Arguments((*positional, *(a.arg for a in node.args.kwonlyargs)), node.args.kwarg is not None)


@functools.cache
def _parse(module: str) -> ast.Module | None:
    try:
        spec = importlib.util.find_spec(module)  # imports the parent packages, not the module itself
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            with open(spec.origin, encoding="utf-8") as handle:
                return ast.parse(handle.read(), filename=spec.origin)
    except (ImportError, OSError, SyntaxError, ValueError):
        pass
    return None
