"""`build`: groups of `comparative.group_size` positives and `comparative.negatives` (default as many) negatives
(`ckd.comparative`)."""

from __future__ import annotations

import argparse
from typing import Any

from ckd.comparative import ComparativeSet, comparative_set
from ckd.config import ComparativeConfig, Params
from ckd.data import Pool
from ckd.query import Queried
from ckd.stages._entry import parser, run


def build(
    comparative: ComparativeConfig, scores_kind: str, seed: int, queried: Queried, pool: Pool
) -> tuple[ComparativeSet, dict[str, Any]]:
    built = comparative_set(
        queried.ids,
        queried.scores,
        pool,
        scores_kind,
        comparative.group_size,
        comparative.max_groups,
        seed,
        comparative.negatives,
    )
    return built, {
        "samples": int(len(built.ids)),
        "groups": int(len(built.positives)),
        "group_size": comparative.group_size,
        "negatives": comparative.negatives or comparative.group_size,
        "labelled": built.labels is not None,
    }


def main(argv: list[str] | None = None) -> None:
    p = parser("build", __doc__)
    p.add_argument("--queried", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--out", required=True)

    def body(args: argparse.Namespace, params: Params) -> dict[str, Any]:
        built, metrics = build(
            params.comparative, params.teacher.scores, params.seed, Queried.load(args.queried), Pool.load(args.pool)
        )
        built.save(args.out)
        return metrics

    run("build", p, body, argv)


if __name__ == "__main__":
    main()
