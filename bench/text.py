"""The text benchmark (AG News): accuracy against LLM-teacher calls, at equal budget.

    python -m bench.text                      # examples/ag_news/params.yaml, its embed stage's output

Every row is the text pipeline's params file (`--params`, default `examples/ag_news/params.yaml`) with
the benchmark's overrides on top, the configuration `dvc repro` of that example runs: steps, learning-rate
grid, student architecture, augmentation, groups and the split are the file's own unless an option here
says otherwise (so the benchmark and the example cannot drift apart). The benchmark's own overrides:
`teacher.budget=N`, `seed` and `student.seed` per (budget N, seed); `data.use_labels` per regime; a
variant's method, method arguments and other `student.*` settings (`bench.recipes`); `default` is the
params file's own `student` section, unchanged (the default recipe); and, as `bench` does, training on
the CPU with one thread per worker. A variant whose configuration equals another's (e.g. `default` and
`ckd` when the example runs `ckd`) is trained once and reported under both names.

The embed stage's output holds every text, its label and its frozen-encoder embedding. Not a second pipeline:
the teacher's answers and each comparative set come from the pipeline's own stage functions (sample, query,
check, build: `bench.run.ask_teacher`), so a row and `dvc repro` with the row's `overrides` give the same
student (tests/test_bench_equals_repro.py). The split is the pipeline's (`data.test_size`), one for every row
(`data.split_seed` fixed at the params' own). The teacher is the STAND-IN LLM server (a TF-IDF +
logistic-regression classifier trained on the pool, `examples.ag_news.llm_server`, as `examples/ag_news/run.sh`
starts it) on 127.0.0.1, asked through the `openai` backend built from the params' `teacher` section, once
per text, under one store per seed that pays for the largest budget: the calls, tokens and the budget are
real, the language model is not. For each (budget N, seed) the sample stage selects N pool texts by
`data.selection` (every strategy is nested: N=300 extends N=100, whose answers are paid once) and every
variant trains the head on the cached embeddings of those N answers (a recipe's group shape, e.g. `ckd_21`,
built by the build stage), once per student seed (`--student-seeds`: the student's seed apart from the data
seed). `--dev-size D` is the dev protocol: D seeded pool texts stand in for the test split, which is never
read (recipes and grids are chosen there; the stand-in LLM is then trained on the rest of the pool).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, cast

import numpy as np
from tqdm.auto import tqdm

from bench.recipes import RECIPES
from bench.report import write_report
from bench.run import FIELDS, _init_worker, _train_one, ask_teacher, variant_overrides
from ckd.config import Params, load_config, with_overrides
from ckd.data import load_source, split_pool_test, write_arrays
from ckd.errors import CkdError
from ckd.stages.build import build
from ckd.teachers.openai_chat import OpenAITeacherConfig
from examples.ag_news.llm_server import StandinLLMServer, TextClassifierLLM

EXAMPLE_PARAMS = Path(__file__).resolve().parents[1] / "examples" / "ag_news" / "params.yaml"
DEFAULT_VARIANT = "default"  # the params file's own `student` section: what `dvc repro` runs


def base_params(args) -> tuple[Params, dict[str, Any]]:
    """The params file with the command line's overrides (an option not given keeps the file's value)."""
    options = {
        "data.test_size": args.test_size,
        "data.split_seed": args.split_seed,
        "data.selection": args.selection,
        "student.steps": args.steps,
        "student.lr": args.lr,
        "student.arch_args": json.loads(args.arch_args) if args.arch_args is not None else None,
        "comparative.group_size": args.group_size,
        "comparative.max_groups": args.max_groups,
    }
    overrides: dict[str, Any] = {key: value for key, value in options.items() if value is not None}
    overrides["student.device"] = "cpu"  # one CPU thread per worker process, as `bench`
    overrides["student.threads"] = 1
    try:
        base = with_overrides(load_config(args.params), overrides)
    except CkdError as error:
        raise SystemExit(f"ckd bench text: error: {error}") from None
    if base.data.text is None or not isinstance(base.teacher, OpenAITeacherConfig):
        raise SystemExit(f"{args.params}: not a text pipeline's params (data.text and teacher.kind: openai)")
    return base, overrides


def student_overrides(variant: str, base: Params) -> dict[str, Any]:
    """`default`: nothing (the file's own student); a recipe: its method and settings, its augmentation
    included (`auto` is none on embeddings, so `kd` stays plain KD whatever the example runs)."""
    if variant == DEFAULT_VARIANT:
        return {}
    return variant_overrides(variant, {}, None)


def prepare(args, base: Params, overrides: dict[str, Any], out: Path) -> tuple[list[dict], dict]:
    dataset = load_source(args.embedded, base.data)
    if dataset.texts is None or dataset.y is None:
        raise SystemExit(f"{args.embedded}: no 'text' or labels; give the embed stage's output")
    llm_config = cast(OpenAITeacherConfig, base.teacher)  # base_params checked it
    label_words = tuple(llm_config.label_words or ())
    prompt = llm_config.prompt
    embedded = str(args.embedded)
    pool_ids, test_ids = split_pool_test(len(dataset.x), base.data.test_size, base.split_seed)
    # One split for every row (one stand-in LLM, one test split), as `bench` fixes it: the pipeline's split
    # follows `seed` unless `data.split_seed` is set.
    data_overrides: dict[str, Any] = {"data.split_seed": base.split_seed}
    if args.dev_size:
        # the dev protocol (choose recipes here): the test split is never read; a seeded part of the pool stands in.
        # The pipeline's sample stage makes it: on the pool alone (in order), with the dev size and seed.
        embedded = str(out / "data" / "dev_pool.npz")
        write_arrays(embedded, x=dataset.x[pool_ids], y=dataset.y[pool_ids], text=dataset.texts[pool_ids],
                     class_names=np.asarray(dataset.class_names))  # fmt: skip
        data_overrides = {"data.test_size": args.dev_size, "data.split_seed": base.split_seed + 1}
        inner_pool, inner_dev = split_pool_test(len(pool_ids), args.dev_size, base.split_seed + 1)
        pool_ids, test_ids = pool_ids[inner_pool], pool_ids[inner_dev]
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    test_path = data_dir / "test.npz"
    # As `run.sh` trains it (examples.ag_news.llm_server.standin_from_data): on the pool of the pipeline's split.
    llm = TextClassifierLLM(dataset.texts[pool_ids], dataset.y[pool_ids], label_words, base.seed)
    # As the server sees them: the prompted texts.
    teacher_test_accuracy = llm.accuracy(
        [prompt.format(text=t, labels=", ".join(label_words)) for t in dataset.texts[test_ids]], dataset.y[test_ids]
    )
    jobs: list[dict] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0}
    budgets = sorted(args.budgets)  # nested selections: each budget's answers extend the smaller one's
    with StandinLLMServer(llm, llm_config.model_name or "standin-llm") as server:
        for seed in range(args.seeds):
            # One store per seed that pays for the largest budget; a smaller budget's selection is the first N of
            # the larger's (every selection strategy is nested), so its answers are paid once.
            store = (out / "teacher_outputs" / f"s{seed}").resolve()  # absolute: not the main repository's store
            paying = {"teacher.url": server.url, "teacher.budget": budgets[-1], "teacher.store": str(store)}
            paying_teacher = with_overrides(base, paying).teacher
            for budget, regime in itertools.product(budgets, args.regimes):
                labels = {"data.use_labels": regime == "labelled"}
                per_job = {**overrides, **data_overrides, "seed": seed, "teacher.budget": budget, **labels}
                params = with_overrides(base, per_job)
                # the pipeline's own stages (sample, query, check, build), as `dvc repro` runs them
                stages = ask_teacher(params, paying_teacher, embedded=embedded)
                queried = stages["queried"]
                spent = stages["accounting"]
                assert len(queried.ids) == budget and spent["calls_spent_total"] == budget, "a budget not spent in full"
                usage = {
                    k: usage[k] + spent.get(f"{k}_this_run", 0) for k in ("prompt_tokens", "completion_tokens")
                } | {"calls": usage["calls"] + spent["calls_this_run"]}
                if not test_path.exists():
                    stages["test"].save(test_path)
                data_paths = {}  # one comparative set per group shape the variants ask for (ckd_21: 2+1)
                for variant in args.variants:
                    shape = {} if variant == DEFAULT_VARIANT else RECIPES[variant].comparative
                    key = json.dumps(shape, sort_keys=True)
                    if key not in data_paths:
                        comparative = stages["comparative"]  # params.comparative's shape, built by ask_teacher
                        if shape:
                            shaped = with_overrides(params, {f"comparative.{k}": v for k, v in shape.items()})
                            comparative, _ = build(shaped.comparative, params.teacher.scores, seed, queried,
                                                   stages["pool"])  # fmt: skip
                        suffix = "".join(f"-{k}{v}" for k, v in shape.items())
                        data_paths[key] = data_dir / f"n{budget}-s{seed}-{regime}{suffix}.npz"
                        comparative.save(data_paths[key])
                # the student seed (init, batch order, train/validation split) apart from the data seed
                student_seeds = [seed * args.student_seeds + k for k in range(args.student_seeds)]
                for variant, student_seed in itertools.product(args.variants, student_seeds):
                    row_overrides = {**per_job, "student.seed": student_seed, **student_overrides(variant, base)}
                    shape = {} if variant == DEFAULT_VARIANT else RECIPES[variant].comparative
                    jobs.append(
                        {
                            "dataset": "ag_news",
                            "regime": regime,
                            "budget": budget,
                            "seed": seed,
                            "variant": variant,
                            "data": str(data_paths[json.dumps(shape, sort_keys=True)]),
                            "test": str(test_path),
                            "teacher_calls": budget,
                            "overrides": row_overrides,
                            "params": with_overrides(base, row_overrides).as_dict(),
                        }
                    )
        computed = server.computed
    student = base.student
    info = {
        "dataset": "ag_news",
        "pool": int(len(pool_ids)),
        "test": int(len(test_ids)),
        "teacher_test_accuracy": teacher_test_accuracy,
        "steps": student.steps,
        "lr_grid": list(student.lr),
        "student": f"{student.arch} {json.dumps(student.arch_args)} on frozen all-MiniLM-L6-v2 embeddings",
        "group_size": base.comparative.group_size,
        "method_args": "{} (the recipes' own)",
        "augment": student.augment,
        "max_groups": base.comparative.max_groups,
        "selection": base.data.selection,
        "teacher": "stand-in LLM server (TF-IDF + logistic regression), openai backend",
        "server_computed": computed,
        "teacher_usage": usage,
        "base_params": str(args.params),
        "overrides": overrides,
        "default_variant": DEFAULT_VARIANT if DEFAULT_VARIANT in args.variants else None,
        "variant_notes": {
            DEFAULT_VARIANT: f"the default recipe: {Path(args.params).name}'s own student section "
            f"(method {student.method}, method_args {json.dumps(student.method_args)}, "
            f"unlabelled_weight {student.unlabelled_weight})"
        },
    }
    return jobs, info


def same_configuration(jobs: list[dict]) -> tuple[list[dict], dict[int, int], dict[str, str]]:
    """Jobs to train (one per distinct configuration and data), each job's index in that list, and which
    variant names turned out to be the same configuration as another (trained once)."""
    unique: list[dict] = []
    index: dict[str, int] = {}
    of: dict[int, int] = {}
    same: dict[str, str] = {}
    for number, job in enumerate(jobs):
        key = json.dumps([job["data"], job["params"]], sort_keys=True)
        if key in index:
            first = unique[index[key]]
            if first["variant"] != job["variant"]:
                same[job["variant"]] = first["variant"]
        else:
            index[key] = len(unique)
            unique.append(job)
        of[number] = index[key]
    return unique, of, same


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.text", description=__doc__.strip().splitlines()[0])
    p.add_argument("--params", default=str(EXAMPLE_PARAMS), help="a text pipeline's params (default: the example's)")
    p.add_argument("--embedded", default="data/embedded.npz", help="the embed stage's output (examples/ag_news/run.sh)")
    p.add_argument("--budgets", type=lambda s: [int(v) for v in s.split(",")], default=[100, 300, 1000])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--student-seeds", type=int, default=1, help="student seeds per data seed")
    p.add_argument("--dev-size", type=int, default=0, help="dev protocol: hold out this many pool texts as the test")
    p.add_argument(
        "--variants",
        type=lambda s: s.split(","),
        default=[DEFAULT_VARIANT, "ce", "kd", "kd_plain", "ckd", "ckd_control"],
        help=f"recipes (bench.recipes) and {DEFAULT_VARIANT!r} (the params' own student section)",
    )
    p.add_argument("--regimes", type=lambda s: s.split(","), default=["labelled", "teacher_only"])
    # Not given: the params file's own value.
    p.add_argument("--test-size", type=float, default=None, help="data.test_size")
    p.add_argument("--steps", type=int, default=None, help="student.steps")
    p.add_argument("--lr", type=lambda s: [float(v) for v in s.split(",")], default=None, help="student.lr")
    p.add_argument("--arch-args", default=None, help="student.arch_args as JSON")
    p.add_argument("--group-size", type=int, default=None, help="comparative.group_size")
    p.add_argument("--max-groups", type=int, default=None, help="comparative.max_groups")
    p.add_argument("--split-seed", type=int, default=None, help="data.split_seed")
    p.add_argument("--selection", default=None, help="data.selection")
    p.add_argument("--workers", type=int, default=1, help="1: train in this process")
    p.add_argument("--out", default="bench_results/ag_news")
    args = p.parse_args(argv)
    unknown = [v for v in args.variants if v != DEFAULT_VARIANT and v not in RECIPES]
    if unknown:
        p.error(f"--variants: unknown {', '.join(unknown)}; known: {DEFAULT_VARIANT}, {', '.join(RECIPES)}")
    args.out = Path(args.out)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    base, overrides = base_params(args)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs, info = prepare(args, base, overrides, args.out)
    unique, of, same = same_configuration(jobs)
    info["same_configuration"] = same
    # The regimes in the order given (all of the first before any of the second), so that a run cut short
    # has whole regimes; info.json first, so that `python -m bench.report` renders a partial results.csv.
    order = sorted(range(len(unique)), key=lambda u: args.regimes.index(unique[u]["regime"]))
    info_path = args.out / "info.json"
    info_path.write_text(json.dumps({**info, "command": vars(args) | {"out": str(args.out)}}, indent=2, default=str))
    results: dict[int, dict] = {}
    done = []
    with open(args.out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()

        def finished(number: int, row: dict) -> None:
            results[number] = row
            for j, u in of.items():
                if u == number:  # every variant with this configuration: the same student, under its own name
                    job = jobs[j]
                    named = row | {"variant": job["variant"], "overrides": json.dumps(job["overrides"])}
                    writer.writerow(named)
                    done.append(named)
            handle.flush()

        if args.workers == 1:
            _init_worker()
            for number in tqdm(order, desc="bench runs", unit="run"):
                finished(number, _train_one(unique[number]))
        else:
            with ProcessPoolExecutor(max_workers=args.workers, initializer=_init_worker) as pool:
                futures = {pool.submit(_train_one, unique[number]): number for number in order}
                for future in tqdm(as_completed(futures), total=len(futures), desc="bench runs", unit="run"):
                    finished(futures[future], future.result())
    info_path.write_text(json.dumps({**info, "command": vars(args) | {"out": str(args.out)}}, indent=2, default=str))
    write_report(done, info, args.out)
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'results.md'}, {args.out / 'accuracy_vs_calls.png'}")


if __name__ == "__main__":
    main()
