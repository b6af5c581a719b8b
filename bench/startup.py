"""Each stage's start-up: the seconds a stage process spends importing modules, over a real run.

    python bench/startup.py [--sources .,../old-checkout] [--repeats 3] [--out bench/startup]
    python bench/startup.py --validate-only [--sources OLD,.] [--repeats 5] [--out bench/startup_validate]

`--validate-only` times what every stage process does before its own work: a fresh interpreter that
imports `stages.<stage>` and validates the whole params file (`ckd/stages/_entry.py`), in each source tree
with its own `params.yaml`; wall seconds (median over repeats, sources and stages interleaved) and the
heavy libraries loaded by then. No project is made or run.

For each source tree (default: this one), a scratch project is made from its `dvc.yaml`, `params.yaml`,
`stages/` and `ckd/` with small parameters and run once with `dvc repro`; then each stage's own
command (from `dvc.yaml`) is run again under `python -X importtime`, and the top-level imports'
cumulative times are added up: the start-up a stage pays before and while it works, lazy imports
included. Sources and stages are interleaved and repeated, so that a busy machine loads them alike;
compare sources within one run. Also reports which heavy libraries each stage loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SMALL = {
    "teacher": {"budget": 60, "standin": {"epochs": 3}},
    "student": {"steps": 100, "lr": [0.003], "eval_every": 50},
    "validate": {"min_accuracy": 0.3, "latency_runs": 20},
}
HEAVY = ("torch", "onnxruntime", "great_expectations", "sklearn", "prefect", "httpx", "pandas")
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


def merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def make_project(source: Path, root: Path) -> Path:
    for item in ("dvc.yaml", "params.yaml", "stages", "ckd"):
        (shutil.copytree if (source / item).is_dir() else shutil.copy)(source / item, root / item)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(merge(params, SMALL), sort_keys=False))
    dvc = str(Path(sys.executable).with_name("dvc"))
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=root, check=True)
    subprocess.run([dvc, "config", "core.analytics", "false"], cwd=root, check=True)
    subprocess.run([dvc, "repro", "-q"], cwd=root, check=True, env=stage_env(root))
    return root


def stage_env(root: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root), TQDM_DISABLE="1")
    return env


def parse_importtime(stderr: str) -> tuple[float, set[str]]:
    """(seconds in top-level imports, heavy libraries loaded) from `-X importtime` output."""
    total, loaded = 0, set()
    for line in stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if not match:
            continue
        name = match.group(4)
        if len(match.group(3)) == 0:  # a top-level import: its cumulative time includes its children
            total += int(match.group(2))
        root = name.split(".")[0]
        if root in HEAVY:
            loaded.add(root)
    return total / 1e6, loaded


def run_stage(root: Path, command: str) -> dict:
    args = command.split()
    assert args[0] == "python"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args[1:]], cwd=root, env=stage_env(root), capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command} failed in {root}: {done.stderr[-1500:]}")
    seconds, loaded = parse_importtime(done.stderr)
    return {"imports_s": seconds, "wall_s": wall, "heavy": sorted(loaded)}


VALIDATE = (
    "import stages.{stage}; from ckd.config import load_config; load_config('params.yaml'); import sys; "
    "print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))))"
)


def validate_only(sources: list[Path], repeats: int, skip: set[str]) -> list[dict]:
    samples: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for _ in range(repeats):
        for source in sources:
            stages = yaml.safe_load((source / "dvc.yaml").read_text())["stages"]
            for stage in stages:
                if stage in skip:
                    continue
                code = VALIDATE.format(stage=stage, heavy=HEAVY)
                start = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-c", code], cwd=source, env=stage_env(source), capture_output=True, text=True
                )
                wall = time.perf_counter() - start
                if done.returncode != 0:
                    raise SystemExit(f"stages.{stage} failed to start in {source}: {done.stderr[-1500:]}")
                samples.setdefault((stage, str(source)), []).append((wall, done.stdout.strip()))
    return [
        {
            "stage": stage,
            "source": name,
            "startup_s": round(statistics.median(w for w, _ in runs), 2),
            "heavy_imports": runs[0][1] or "-",
        }
        for (stage, name), runs in samples.items()
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python bench/startup.py", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--sources", default=".", help="comma-separated source trees to compare (default: .)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated stages not to time (e.g. teacher: it trains)")
    parser.add_argument(
        "--workdir", default=None, help="keep the scratch projects here (p0, p1, ...) and reuse those already run"
    )
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    parser.add_argument(
        "--validate-only", action="store_true", help="time import + params validation only (no project is run)"
    )
    args = parser.parse_args(argv)
    sources = [Path(s).resolve() for s in args.sources.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    if args.validate_only:
        load_before = os.getloadavg()
        rows = validate_only(sources, args.repeats, skip)
        python_start = statistics.median(_time([sys.executable, "-c", "pass"]) for _ in range(max(3, args.repeats)))
        report = {
            "mode": "validate-only",
            "python_start_s": round(python_start, 3),
            "repeats": args.repeats,
            "rows": rows,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }
        print(json.dumps(report, indent=2))
        if args.out:
            _write_validate_only(Path(args.out), report, sources)
        return
    with tempfile.TemporaryDirectory() as tmp:
        projects = {}
        for n, source in enumerate(sources):
            root = Path(args.workdir or tmp) / f"p{n}"
            if (root / "models" / "student.onnx").is_file():
                projects[str(source)] = root  # made and run by an earlier call
                continue
            root.mkdir(parents=True, exist_ok=True)
            projects[str(source)] = make_project(source, root)
        samples: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.repeats):
            for name, root in projects.items():
                stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
                for stage, spec in stages.items():
                    if stage in skip:
                        continue
                    samples.setdefault((stage, name), []).append(run_stage(root, spec["cmd"]))
        python_start = statistics.median(_time([sys.executable, "-c", "pass"]) for _ in range(max(3, args.repeats)))
    rows = []
    for (stage, name), runs in samples.items():
        rows.append(
            {
                "stage": stage,
                "source": name,
                "imports_s": round(statistics.median(r["imports_s"] for r in runs), 2),
                "stage_wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
                "heavy_imports": ",".join(runs[0]["heavy"]) or "-",
            }
        )
    rows.sort(key=lambda r: (list(dict.fromkeys(s for s, _ in samples)).index(r["stage"]), r["source"]))
    report = {
        "python_start_s": round(python_start, 3),
        "repeats": args.repeats,
        "rows": rows,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        lines = ["| stage | source | imports (s) | stage wall (s) | heavy libraries loaded |", "|---|---|---|---|---|"]
        lines += [
            f"| {r['stage']} | {Path(r['source']).name} | {r['imports_s']} | {r['stage_wall_s']} | "
            f"{r['heavy_imports']} |"
            for r in rows
        ]
        out.with_suffix(".md").write_text(
            "\n".join(lines) + f"\n\nPython itself starts in {report['python_start_s']} s.\n"
        )


def _write_validate_only(out: Path, report: dict, sources: list[Path]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    names = [str(s) for s in sources]
    by = {(r["stage"], r["source"]): r for r in report["rows"]}
    head = " | ".join(f"{Path(n).name} (s) | {Path(n).name}: heavy libraries" for n in names)
    lines = [f"| stage | {head} |", "|---|" + "---|---|" * len(names)]
    for stage in dict.fromkeys(r["stage"] for r in report["rows"]):
        cells = " | ".join(
            f"{by[(stage, n)]['startup_s']} | {by[(stage, n)]['heavy_imports']}" if (stage, n) in by else "- | -"
            for n in names
        )
        lines.append(f"| {stage} | {cells} |")
    out.with_suffix(".md").write_text(
        "\n".join(lines)
        + f"\n\nPython itself starts in {report['python_start_s']} s. Median of {report['repeats']} runs. "
        f"Load average (1, 5, 15 min) before {report['load_average_before']}, after {report['load_average_after']}.\n"
    )


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
