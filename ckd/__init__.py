"""ckd: Comparative Knowledge Distillation under a hard teacher-call budget.

Wilf, Xu, Liang, Obolenskiy, Fried, Morency, "Comparative Knowledge Distillation"
(arXiv 2311.02253): the teacher is asked once about N inputs, its answers are cached, and the
student learns from differences between groups of samples.
"""

import os

# Nothing may phone home: set before any of these libraries is imported.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from ckd.errors import CkdError, ConfigError  # noqa: E402

__all__ = ["CkdError", "ConfigError"]
__version__ = "0.1.0"
