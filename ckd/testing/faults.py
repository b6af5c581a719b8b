"""Fault cases for a teacher behind an inference server, each run against a real server through the
fault-injecting proxy, with the invariants every case must keep:

  * samples the server computed <= budget;
  * every answered sample stored exactly once; the store passes its consistency checks;
  * the run completes, or stops with a clear message.

Used by the tests (`tests/teachers/test_http_faults.py`) and by `python -m ckd.bench.faults`, which
prints the table of cases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import json

import numpy as np
import yaml

from ckd.data import write_arrays
from ckd.errors import CkdError
from ckd.query import run_query
from ckd.store import open_store
from ckd.teachers.http_oip import OpenInferenceTeacher
from ckd.testing.fault_proxy import FaultProxy, Plan, at, every

PROJECT = Path(__file__).resolve().parents[2]


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
    Scenario("gateway 503 after the upstream model computed, budget already spent", at({2: "503"}), budget=60,
             expect_unanswered=10),
    Scenario("all at once: 20% 500, a 429, a late answer, a reset", combined_plan, budget=120, timeout_s=1.0),
    Scenario("a late answer when the budget is already spent", at({2: "slow"}), budget=60, timeout_s=1.0,
             expect_unanswered=10),
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


def run_scenario(scenario: Scenario, server_url: str, ids: np.ndarray, x: np.ndarray, num_classes: int,
                 workdir: Path) -> dict:
    store = workdir / "store"
    start = time.perf_counter()
    with FaultProxy(server_url, scenario.plan, slow_s=scenario.slow_s) as proxy:
        teacher = OpenInferenceTeacher(proxy.url, "teacher", concurrency=scenario.concurrency,
                                       timeout_s=scenario.timeout_s, max_retries=6, backoff_s=0.05)
        try:
            result = run_query(teacher, ids[:scenario.selected], x[:scenario.selected], num_classes,
                               scenario.budget, store, scenario.batch_size, progress=False)
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
    return {"case": scenario.name, "budget": scenario.budget, "selected": scenario.selected,
            "server_computed": computed, "teacher_calls": calls, "stored": stored, "lost": lost,
            "unanswered": unanswered, "outcome": outcome, "faults": faults, "seconds": round(seconds, 2),
            "problems": problems}


def run_sigkill_case(server_url: str, ids: np.ndarray, x: np.ndarray, class_names, workdir: Path,
                     budget: int = 70, kill_after: int = 3) -> dict:
    """SIGKILL the `query` stage after `kill_after` requests reached the server, then re-run it."""
    write_arrays(workdir / "pool.npz", ids=ids, x=x, class_names=np.asarray(class_names), is_image=np.asarray(True))
    write_arrays(workdir / "selected.npz", ids=ids[:60])
    command = [sys.executable, "-m", "stages.query", "--params", str(workdir / "params.yaml"),
               "--pool", str(workdir / "pool.npz"), "--selected", str(workdir / "selected.npz"),
               "--out", str(workdir / "queried.npz"), "--metrics", str(workdir / "query.json")]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    with FaultProxy(server_url, lambda i: "delay", delay_s=0.4) as proxy:
        params = {"teacher": {"kind": "http", "url": proxy.url, "model_name": "teacher", "budget": budget,
                              "batch_size": 10, "concurrency": 1, "timeout_s": 10, "store": str(workdir / "store")}}
        (workdir / "params.yaml").write_text(yaml.safe_dump(params))
        process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proxy.requests < kill_after and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        computed_at_kill = proxy.computed
        proxy.plan = lambda i: "ok"
        rerun = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
        computed = proxy.computed
    stored, problems = store_agrees(str(workdir / "store"))
    metrics = json.loads((workdir / "query.json").read_text()) if rerun.returncode == 0 else {}
    if computed > budget:
        problems.append(f"server computed {computed} > budget {budget}")
    return {"case": f"SIGKILL of query after {kill_after} requests, then a re-run", "budget": budget, "selected": 60,
            "server_computed": computed, "computed_at_kill": computed_at_kill,
            "teacher_calls": metrics.get("calls_spent_total"), "stored": stored, "lost": metrics.get("teacher_lost"),
            "unanswered": metrics.get("unanswered"),
            "outcome": "completed" if rerun.returncode == 0 else f"stopped: {rerun.stderr.strip()[-300:]}",
            "problems": problems}
