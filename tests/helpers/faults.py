"""The fault cases for the `http` teacher against KServe's real model server on loopback, each through
the fault-injecting proxy (`tests.helpers.fault_proxy`) that counts what the server computed, with the
invariants every case must keep:

  * samples the server computed <= budget;
  * every answered sample stored exactly once; the store passes its consistency checks;
  * the run completes, or stops with a clear message.

    python -m tests.helpers.faults [--teacher models/standin/teacher.onnx]     # prints the table of cases

The tests (`tests/teachers/test_http_faults.py`) run the same cases.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ckd.config import DataConfig
from ckd.data import load_source
from ckd.errors import CkdError
from ckd.query import run_query
from ckd.store import open_store
from ckd.teachers.http_oip import OpenInferenceTeacher
from tests.helpers.fault_proxy import FaultProxy, Plan, at, every
from tests.helpers.servers import KServeTeacher


def combined_plan(i: int) -> str:
    return {3: "429", 5: "slow", 8: "reset"}.get(i, "500" if i % 5 == 1 else "ok")


@dataclass(frozen=True)
class Scenario:
    name: str
    plan: Plan
    budget: int
    selected: int = 60
    timeout_s: float = 5.0
    slow_s: float = 2.5
    concurrency: int = 2
    batch_size: int = 10
    expect_unanswered: int = 0
    extra: dict = field(default_factory=dict)


SCENARIOS = [
    Scenario("20% of requests answered a bare 500 (may have run: counted as lost)", every(5, "500", 1), budget=80),
    Scenario("20% answered 500 with Retry-After (nothing ran: retried, not counted)", every(5, "500ra", 1), budget=60),
    Scenario("429 with Retry-After: 1 s, twice", at({1: "429", 4: "429"}), budget=60),
    Scenario("answers after the client's timeout (2 batches)", at({2: "slow", 5: "slow"}), budget=80, timeout_s=1.0),
    Scenario("one connection reset after the server computed", at({3: "reset"}), budget=70),
    Scenario("gateway 502 and 504 after the upstream model computed", at({1: "502", 4: "504"}), budget=80),
    Scenario(
        "gateway 503 after the upstream model computed, budget already spent",
        at({2: "503"}),
        budget=60,
        expect_unanswered=10,
    ),
    Scenario("all at once: 20% 500, a 429, a late answer, a reset", combined_plan, budget=120, timeout_s=1.0),
    Scenario(
        "a late answer when the budget is already spent",
        at({2: "slow"}),
        budget=60,
        timeout_s=1.0,
        expect_unanswered=10,
    ),
]


def store_agrees(store_spec: str) -> tuple[int, list[str]]:
    """How many answers the store holds, and what breaks its consistency rules (see `Store.check`)."""
    try:
        store = open_store(store_spec)
    except CkdError as error:
        return 0, [str(error)]
    try:
        summaries = store.summaries()
        problems = [] if len(summaries) == 1 else [f"{len(summaries)} teachers in one case's store"]
        return sum(s.answered for s in summaries), problems
    finally:
        store.close()


def run_scenario(
    scenario: Scenario, server_url: str, ids: np.ndarray, x: np.ndarray, num_classes: int, workdir: Path
) -> dict:
    store = workdir / "store"
    start = time.perf_counter()
    with FaultProxy(server_url, scenario.plan, slow_s=scenario.slow_s) as proxy:
        teacher = OpenInferenceTeacher(
            proxy.url,
            "teacher",
            concurrency=scenario.concurrency,
            timeout_s=scenario.timeout_s,
            max_retries=6,
            backoff_s=0.05,
        )
        try:
            result = run_query(
                teacher,
                ids[: scenario.selected],
                x[: scenario.selected],
                num_classes,
                scenario.budget,
                store,
                scenario.batch_size,
                progress=False,
            )
            outcome = "completed" if result.unanswered == 0 else f"completed, {result.unanswered} unanswered"
            calls, lost, unanswered = result.calls_spent_total, result.teacher_lost, result.unanswered
        except CkdError as error:
            outcome, calls, lost, unanswered = f"stopped: {error}", None, None, None
        seconds = time.perf_counter() - start
        computed, faults = proxy.computed, dict(proxy.faults)
    stored, problems = store_agrees(str(store))
    if computed > scenario.budget:
        problems.append(f"server computed {computed} > budget {scenario.budget}")
    if calls is not None and computed > calls:
        problems.append(f"server computed {computed} > store count {calls}")
    return {
        "case": scenario.name,
        "budget": scenario.budget,
        "selected": scenario.selected,
        "server_computed": computed,
        "teacher_calls": calls,
        "stored": stored,
        "lost": lost,
        "unanswered": unanswered,
        "outcome": outcome,
        "faults": faults,
        "seconds": round(seconds, 2),
        "problems": problems,
    }


def _query_in_child(url: str, ids: np.ndarray, x: np.ndarray, num_classes: int, budget: int, store: str) -> None:
    """The query of the SIGKILL case, in a child process (the ledger and the store are on disk)."""
    teacher = OpenInferenceTeacher(url, "teacher", concurrency=1, timeout_s=10)
    run_query(teacher, ids, x, num_classes, budget, store, batch_size=10, progress=False)


def run_sigkill_case(
    server_url: str,
    ids: np.ndarray,
    x: np.ndarray,
    num_classes: int,
    workdir: Path,
    budget: int = 70,
    kill_after: int = 3,
) -> dict:
    """SIGKILL a process running the query after `kill_after` requests reached the server, then run the
    query again: nothing answered is asked twice and the count stays within the budget."""
    store = workdir / "store"
    selected_ids, selected_x = ids[:60], x[:60]
    with FaultProxy(server_url, lambda i: "delay", delay_s=0.4) as proxy:
        # spawn, not fork: the child starts clean (no copied threads or locks of this process)
        child = multiprocessing.get_context("spawn").Process(
            target=_query_in_child, args=(proxy.url, selected_ids, selected_x, num_classes, budget, str(store))
        )
        child.start()
        deadline = time.monotonic() + 120
        while proxy.requests < kill_after and time.monotonic() < deadline and child.is_alive():
            time.sleep(0.01)
        if child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
        child.join()
        computed_at_kill = proxy.computed
        proxy.plan = lambda i: "ok"
        teacher = OpenInferenceTeacher(proxy.url, "teacher", concurrency=1, timeout_s=10)
        try:
            result = run_query(
                teacher, selected_ids, selected_x, num_classes, budget, store, batch_size=10, progress=False
            )
            outcome, calls, lost, unanswered = (
                "completed",
                result.calls_spent_total,
                result.teacher_lost,
                result.unanswered,
            )
        except CkdError as error:
            outcome, calls, lost, unanswered = f"stopped: {error}", None, None, None
        computed = proxy.computed
    stored, problems = store_agrees(str(store))
    if computed > budget:
        problems.append(f"server computed {computed} > budget {budget}")
    return {
        "case": f"SIGKILL of query after {kill_after} requests, then a re-run",
        "budget": budget,
        "selected": 60,
        "server_computed": computed,
        "computed_at_kill": computed_at_kill,
        "teacher_calls": calls,
        "stored": stored,
        "lost": lost,
        "unanswered": unanswered,
        "outcome": outcome,
        "problems": problems,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.helpers.faults", description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--teacher", default="models/standin/teacher.onnx", help="an ONNX teacher taking digits [B, 1, 8, 8]"
    )
    args = parser.parse_args(argv)
    digits = load_source("digits", DataConfig())
    ids, x = np.arange(200), digits.x[:200]
    rows = []
    with KServeTeacher(args.teacher) as url, tempfile.TemporaryDirectory() as scratch:
        for number, scenario in enumerate(SCENARIOS):
            workdir = Path(scratch) / f"case{number}"
            workdir.mkdir()
            rows.append(run_scenario(scenario, url, ids, x, digits.num_classes, workdir))
        workdir = Path(scratch) / "sigkill"
        workdir.mkdir()
        rows.append(run_sigkill_case(url, ids, x, digits.num_classes, workdir))
    print("| case | server computed | budget | outputs stored | lost | unanswered | outcome | invariants |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        invariants = "kept" if not row["problems"] else "; ".join(row["problems"])
        print(
            f"| {row['case']} | {row['server_computed']} | {row['budget']} | {row['stored']} | {row['lost']} | "
            f"{row['unanswered']} | {row['outcome']} | {invariants} |"
        )


if __name__ == "__main__":
    main()
