"""What every stage script shares: the whole params file validated first, one-line errors, the metrics file."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ckd.config import Params, check_runtime, load_config
from ckd.errors import USER_ERROR_EXIT, CkdError, record_exit_status
from ckd.metrics import write_metrics
from ckd.stages import metrics_path, write_json


def parser(stage: str, doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m ckd.stages.{stage}", description=(doc or "").strip().splitlines()[0])
    p.add_argument("--params", default="params.yaml", help="the parameters file (default: params.yaml)")
    p.add_argument("--metrics", default=str(metrics_path(stage)), help="where to write this stage's metrics")
    return p


def run(
    stage: str,
    p: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Params], dict[str, Any]],
    argv: list[str] | None = None,
    gate: Callable[[argparse.Namespace, Params, dict[str, Any]], None] | None = None,
) -> None:
    """Validate the WHOLE params file (a typo anywhere fails in the first stage, before any teacher call),
    run `body`, write its metrics, then `gate` (so metrics are kept when a gate fails). A user-fixable
    error is one line, `ckd <stage>: error: ...`, and exit status 2."""
    logging.basicConfig(level=logging.INFO, format=f"%(levelname)s ckd.{stage}: %(message)s", stream=sys.stderr)
    for noisy in ("great_expectations", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = p.parse_args(argv)
    try:
        params = load_config(args.params)
        check_runtime(params)
        metrics = body(args, params)
        if args.metrics:
            write_metrics(args.metrics, metrics)
        if gate is not None:
            gate(args, params, metrics)
    except CkdError as error:
        for line in str(error).splitlines():
            print(f"ckd {stage}: error: {line}", file=sys.stderr)
        record_exit_status(USER_ERROR_EXIT)
        raise SystemExit(USER_ERROR_EXIT) from None


def run_fingerprint(
    stage: str, doc: str | None, fingerprint: Callable[[Params, Path], dict[str, Any]], argv: list[str] | None = None
) -> None:
    """An always-changed fingerprint stage (`source`, `teacher`): `fingerprint(params, hash cache)` written to
    `--out` as JSON; its metrics count the files it names (`files`, and `test_files` where it has them)."""
    from ckd.fingerprint import cache_beside  # here: a stage that does not fingerprint does not load it

    p = parser(stage, doc)
    p.add_argument("--out", required=True, help="the fingerprint (JSON)")

    def body(args: argparse.Namespace, params: Params) -> dict[str, Any]:
        result = fingerprint(params, cache_beside(args.out))
        write_json(args.out, result)
        return {"files": len(result["files"]) + len(result.get("test_files", {}))}

    run(stage, p, body, argv)
