"""The text benchmark (AG News): accuracy against LLM-teacher calls, at equal budget.

    python -m ckd.bench.text --embedded examples/ag_news/data/embedded.npz

The embed stage's output holds every text, its label and its frozen-encoder embedding. The split is
the pipeline's (pool 6000 / test 1600, seeded). The teacher is the STAND-IN LLM server (a TF-IDF +
logistic-regression classifier trained on the pool, `ckd.bench.llm_server`) on 127.0.0.1, asked through
the `openai` backend, once per text, under one ledger per (budget, seed): the calls, tokens and the
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

from ckd.bench.report import write_report
from ckd.bench.run import FIELDS, _init_worker, _train_one
from ckd.comparative import comparative_arrays
from ckd.data import load_source, select_for_teacher, split_pool_test
from ckd.query import run_query
from ckd.teachers.openai_chat import OpenAIChatTeacher
from ckd.bench.llm_server import StandinLLMServer, TextClassifierLLM

LABEL_WORDS = ("World", "Sports", "Business", "Science")
PROMPT = (
    "Classify the news article into one of these topics: {labels}.\nAnswer with the topic only.\n\n"
    "Article: {text}\nTopic:"
)


def prepare(args, out: Path) -> tuple[list[dict], dict]:
    dataset = load_source(args.embedded)
    if dataset.texts is None:
        raise SystemExit(f"{args.embedded}: no 'text' array; give the embed stage's output")
    pool_ids, test_ids = split_pool_test(len(dataset.x), args.test_size, args.split_seed)
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez(data_dir / "test.npz", x=dataset.x[test_ids], labels=dataset.y[test_ids])
    llm = TextClassifierLLM(dataset.texts[pool_ids], dataset.y[pool_ids], LABEL_WORDS, args.split_seed)
    teacher_test_accuracy = llm.accuracy(
        [PROMPT.format(text=t, labels=", ".join(LABEL_WORDS)) for t in dataset.texts[test_ids]], dataset.y[test_ids]
    )
    pool = {
        "ids": pool_ids,
        "x": dataset.x[pool_ids],
        "labels": dataset.y[pool_ids],
        "class_names": np.asarray(dataset.class_names),
        "is_image": np.asarray(False),
    }
    jobs, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0}
    with StandinLLMServer(llm, "standin-llm") as server:
        teacher = OpenAIChatTeacher(server.url, "standin-llm", LABEL_WORDS, prompt=PROMPT, max_tokens=3, concurrency=4)
        for seed in range(args.seeds):
            # One ledger per seed at the largest budget; smaller budgets use its first N (nested) answers.
            top = max(args.budgets)
            # `random` selection in its own order: its first N picks are the selection for budget N.
            chosen_all = pool_ids[np.random.default_rng(seed).permutation(len(pool_ids))[:top]]
            rows = np.searchsorted(pool_ids, chosen_all)
            result = run_query(
                teacher,
                chosen_all,
                dataset.texts[pool_ids][rows],
                len(LABEL_WORDS),
                top,
                out / "teacher_outputs" / f"s{seed}",
                progress=False,
            )
            assert result.teacher_calls <= top and result.unanswered == 0
            usage = {k: usage[k] + result.usage.get(k, 0) for k in ("prompt_tokens", "completion_tokens")} | {
                "calls": usage["calls"] + result.teacher_calls
            }
            score_of = dict(zip(result.ids.tolist(), result.scores))
            for budget in args.budgets:
                ids = np.sort(chosen_all[:budget])
                assert np.array_equal(ids, select_for_teacher(pool_ids, pool["x"], budget, "random", seed))
                scores = np.stack([score_of[int(i)] for i in ids])
                arrays = comparative_arrays(ids, scores, pool, "logits", args.group_size, args.max_groups, seed)
                arrays_path = data_dir / f"n{budget}-s{seed}.npz"
                np.savez(arrays_path, **arrays)
                for regime in args.regimes:
                    for variant in args.variants:
                        jobs.append(
                            {
                                "dataset": "ag_news",
                                "regime": regime,
                                "budget": budget,
                                "seed": seed,
                                "variant": variant,
                                "arrays": str(arrays_path),
                                "test": str(data_dir / "test.npz"),
                                "teacher_calls": budget,
                                "arch": "mlp",
                                "arch_args": json.loads(args.arch_args),
                                "lr": args.lr,
                                "steps": args.steps,
                                "batch_size": 64,
                                "extra_args": {},
                                "augment": "none",
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
