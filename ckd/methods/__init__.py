"""Distillation methods, one loss per module, registered by name (`student.method`).

Every method uses only the N queried samples: inputs, cached teacher scores and, when the data has
them and `data.use_labels` is on, labels. None makes a teacher call.

A new method is one module (a `ckd.methods.base.Method` subclass) plus one line below, read without importing
the module: validating `student.method` and `student.method_args` never loads torch (ckd/registry.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ckd.registry import Registry

if TYPE_CHECKING:
    from ckd.methods.base import Method, build_method

METHODS: Registry[Method] = Registry(
    "method",
    "student.method",
    {
        "ce": "ckd.methods.ce:CrossEntropy",
        "kd": "ckd.methods.kd:KnowledgeDistillation",
        "kd_mse": "ckd.methods.kd_mse:LogitMatching",
        "mixup": "ckd.methods.mixup:MixupDistillation",
        "rkd": "ckd.methods.rkd:RelationalDistillation",
        "dist": "ckd.methods.dist:DistDistillation",
        "ckd_paper": "ckd.methods.ckd_paper:PaperCKD",
        "ckd": "ckd.methods.ckd:AnchoredCKD",
        "ckd_kd": "ckd.methods.ckd_kd:PaperCKDPlusKD",
    },
)


def __getattr__(name: str) -> Any:
    """`Method` and `build_method` need torch: imported on first use."""
    if name in ("Method", "build_method"):
        from ckd.methods import base

        return getattr(base, name)
    raise AttributeError(f"module 'ckd.methods' has no attribute {name!r}")


__all__ = ["METHODS", "Method", "build_method"]
