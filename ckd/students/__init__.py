"""Student architectures, registered by name; each takes raw inputs (normalisation inside).

A new architecture is one module (an `nn.Module` taking `sample_shape`, `num_classes`, `normalize` and its
own `student.arch_args`) plus one line below, read without importing the module (torch; ckd/registry.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ckd.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from ckd.students.base import build_student

STUDENTS: Registry[nn.Module] = Registry(
    "student architecture",
    "student.arch",
    {
        "mlp": "ckd.students.mlp:MLPStudent",
        "cnn": "ckd.students.cnn:ConvStudent",
        "resnet": "ckd.students.resnet:ResNetStudent",
    },
)


def __getattr__(name: str) -> Any:
    """`build_student` needs torch: imported on first use."""
    if name == "build_student":
        from ckd.students import base

        return base.build_student
    raise AttributeError(f"module 'ckd.students' has no attribute {name!r}")


__all__ = ["STUDENTS", "build_student"]
