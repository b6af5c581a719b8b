"""What every stage script shares: logging, one-line errors, the metrics file."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from ckd.errors import CkdError
from ckd.jsonio import write_json


def parser(stage: str, doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"stages.{stage}", description=(doc or "").strip().splitlines()[0])
    p.add_argument("--params", default="params.yaml", help="the parameters file (default: params.yaml)")
    p.add_argument("--metrics", default=f"metrics/{stage}.json", help="where to write this stage's metrics")
    return p


def run(stage: str, body: Callable[[], dict], metrics_path: str | None) -> None:
    """Run `body`; write its metrics; turn a user-fixable error into one line and exit status 2."""
    logging.basicConfig(level=logging.INFO, format=f"%(levelname)s ckd.{stage}: %(message)s", stream=sys.stderr)
    for noisy in ("great_expectations", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        metrics = body()
    except CkdError as error:
        for line in str(error).splitlines():
            print(f"ckd {stage}: error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
    if metrics_path:
        write_json(metrics_path, metrics)
