"""One generic registry for methods, teachers, students and selection strategies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ckd.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a factory; `build` names the parameter and lists what is registered."""

    def __init__(self, kind: str, parameter: str):
        self.kind = kind
        self.parameter = parameter
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._factories:
            raise ConfigError(
                self.parameter,
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}",
            )
        return self._factories[name]

    def build(self, name: str, **kwargs: Any) -> T:
        factory = self.get(name)
        try:
            return factory(**kwargs)
        except TypeError as error:
            raise ConfigError(self.parameter, f"{self.kind} {name!r}: {error}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._factories
