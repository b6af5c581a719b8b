"""The text benchmark (AG News): accuracy against LLM-teacher calls, at equal budget.

    python -m ckd.bench.text --embedded examples/ag_news/data/embedded.npz

The embed stage's output holds every text, its label and its frozen-encoder embedding. The split is
the pipeline's (pool 6000 / test 1600, seeded). The teacher is the STAND-IN LLM server (a TF-IDF +
logistic-regression classifier trained on the pool, `ckd.bench.llm_server`) on 127.0.0.1, asked through
the `openai` backend, once per text, under one store per seed (nested budgets): the calls, tokens and the
budget are real, the language model is not. For each (budget N, seed) the seed selects N pool texts
(nested: N=300 extends N=100) and every variant trains the same head on the cached embeddings of those
N answers, with the protocol of `ckd.bench` (`python -m ckd.bench --help`).
"""

from __future__ import annotations

import argparse
import csv
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ckd.bench.llm_server import StandinLLMServer, TextClassifierLLM
from ckd.bench.report import write_report
from ckd.bench.run import FIELDS, _init_worker, _train_one, variant_overrides
from ckd.comparative import comparative_set
from ckd.config import load_params, validate_all, with_overrides
from ckd.data import Pool, TestSet, load_source, select_for_teacher, split_pool_test
from ckd.query import run_query
from ckd.teachers.openai_chat import OpenAIChatTeacher, OpenAITeacherConfig

EXAMPLE_PARAMS = Path(__file__).resolve().parents[2] / "examples" / "ag_news" / "params.yaml"


def prepare(args, out: Path) -> tuple[list[dict], dict]:
    dataset = load_source(args.embedded)
    if dataset.texts is None or dataset.y is None:
        raise SystemExit(f"{args.embedded}: no 'text' or labels; give the embed stage's output")
    # The example's params, with the benchmark's options: the prompt and verbalizer are the demo's.
    base = with_overrides(
        validate_all(load_params(EXAMPLE_PARAMS)),
        {
            "student.steps": args.steps,
            "student.lr": args.lr,
            "student.arch_args": json.loads(args.arch_args),
            "comparative.group_size": args.group_size,
            "comparative.max_groups": args.max_groups,
            "student.augment": "none",
            "student.unlabelled_weight": 0.0,
        },
    )
    llm_config = OpenAITeacherConfig.model_validate(load_params(EXAMPLE_PARAMS)["teacher"])  # validated in `base`
    prompt, label_words = llm_config.prompt, tuple(llm_config.label_words or ())
    pool_ids, test_ids = split_pool_test(len(dataset.x), args.test_size, args.split_seed)
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    test_path = data_dir / "test.npz"
    TestSet(ids=test_ids, x=dataset.x[test_ids], labels=dataset.y[test_ids]).save(test_path)
    llm = TextClassifierLLM(dataset.texts[pool_ids], dataset.y[pool_ids], label_words, args.split_seed)
    # As the server sees them: the prompted texts.
    teacher_test_accuracy = llm.accuracy(
        [prompt.format(text=t, labels=", ".join(label_words)) for t in dataset.texts[test_ids]], dataset.y[test_ids]
    )
    pools = {
        regime: Pool(
            ids=pool_ids,
            x=dataset.x[pool_ids],
            class_names=dataset.class_names,
            is_image=False,
            labels=dataset.y[pool_ids] if regime == "labelled" else None,
        )
        for regime in args.regimes
    }
    jobs, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0}
    with StandinLLMServer(llm, "standin-llm") as server:
        teacher = OpenAIChatTeacher(server.url, "standin-llm", label_words, prompt=prompt, max_tokens=3, concurrency=4)
        for seed in range(args.seeds):
            # One store per seed at the largest budget; smaller budgets use its first N (nested) answers.
            top = max(args.budgets)
            # `random` selection in its own order: its first N picks are the selection for budget N.
            chosen_all = pool_ids[np.random.default_rng(seed).permutation(len(pool_ids))[:top]]
            rows = np.searchsorted(pool_ids, chosen_all)
            result = run_query(
                teacher,
                chosen_all,
                dataset.texts[pool_ids][rows],
                len(label_words),
                top,
                out / "teacher_outputs" / f"s{seed}",
                progress=False,
            )
            assert result.calls_spent_total <= top and result.unanswered == 0
            usage = {k: usage[k] + result.usage.get(k, 0) for k in ("prompt_tokens", "completion_tokens")} | {
                "calls": usage["calls"] + result.calls_this_run
            }
            score_of = dict(zip(result.ids.tolist(), result.scores))
            for budget in args.budgets:
                ids = np.sort(chosen_all[:budget])
                assert np.array_equal(ids, select_for_teacher(pool_ids, dataset.x[pool_ids], budget, "random", seed))
                scores = np.stack([score_of[int(i)] for i in ids])
                for regime, pool in pools.items():
                    built = comparative_set(ids, scores, pool, "logits", args.group_size, args.max_groups, seed)
                    data_path = data_dir / f"n{budget}-s{seed}-{regime}.npz"
                    built.save(data_path)
                    for variant in args.variants:
                        overrides = {
                            "seed": seed,
                            "student.seed": seed,
                            "teacher.budget": budget,
                            "data.use_labels": regime == "labelled",
                            **variant_overrides(variant, {}, "none"),
                        }
                        jobs.append(
                            {
                                "dataset": "ag_news",
                                "regime": regime,
                                "budget": budget,
                                "seed": seed,
                                "variant": variant,
                                "data": str(data_path),
                                "test": str(test_path),
                                "teacher_calls": budget,
                                "overrides": overrides,
                                "params": with_overrides(base, overrides).as_dict(),
                            }
                        )
        computed = server.computed
    info = {
        "dataset": "ag_news",
        "pool": int(len(pool_ids)),
        "test": int(len(test_ids)),
        "teacher_test_accuracy": teacher_test_accuracy,
        "steps": args.steps,
        "lr_grid": args.lr,
        "student": f"mlp {args.arch_args} on frozen all-MiniLM-L6-v2 embeddings",
        "group_size": args.group_size,
        "method_args": "{}",
        "augment": "none",
        "max_groups": args.max_groups,
        "selection": "random",
        "teacher": "stand-in LLM server (TF-IDF + logistic regression), openai backend",
        "server_computed": computed,
        "teacher_usage": usage,
    }
    return jobs, info


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ckd.bench.text", description=__doc__.strip().splitlines()[0])
    p.add_argument("--embedded", default="examples/ag_news/data/embedded.npz")
    p.add_argument("--test-size", type=float, default=1600)
    p.add_argument("--budgets", type=lambda s: [int(v) for v in s.split(",")], default=[100, 300, 1000])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--variants", type=lambda s: s.split(","), default=["ce", "kd", "kd_plain", "ckd", "ckd_control"])
    p.add_argument("--regimes", type=lambda s: s.split(","), default=["labelled", "teacher_only"])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=lambda s: [float(v) for v in s.split(",")], default=[3e-3, 1e-3])
    p.add_argument("--arch-args", default='{"hidden": [128]}')
    p.add_argument("--group-size", type=int, default=1)
    p.add_argument("--max-groups", type=int, default=20000)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="bench_results/ag_news")
    args = p.parse_args(argv)
    args.out = Path(args.out)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs, info = prepare(args, args.out)
    done = []
    with (
        ProcessPoolExecutor(max_workers=args.workers, initializer=_init_worker) as pool,
        open(args.out / "results.csv", "w", newline="") as handle,
    ):
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        futures = [pool.submit(_train_one, job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc="bench runs", unit="run"):
            row = future.result()
            writer.writerow(row)
            handle.flush()
            done.append(row)
    (args.out / "info.json").write_text(
        json.dumps({**info, "command": vars(args) | {"out": str(args.out)}}, indent=2, default=str)
    )
    write_report(done, info, args.out)
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'results.md'}, {args.out / 'accuracy_vs_calls.png'}")


if __name__ == "__main__":
    main()
