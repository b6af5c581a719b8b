"""Distillation methods, one loss per module, registered by name (`student.method`).

Every method uses only the N queried samples: inputs, cached teacher scores and, when the data has
them and `data.use_labels` is on, labels. None makes a teacher call.
"""

from ckd.methods import ce, ckd, ckd_kd, ckd_paper, dist, kd, kd_mse, mixup, rkd  # noqa: F401
from ckd.methods.base import METHODS, Method, build_method

__all__ = ["METHODS", "Method", "build_method"]
