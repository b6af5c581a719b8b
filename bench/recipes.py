"""The benchmark's variants: a method, its hyper-parameter grid and its augmentation, as overrides of
`student.*` on top of params.yaml (everything else, steps and learning rates included, is params.yaml's).

Every variant trains the same student for the same number of steps; the grid (learning rates x list
values) is searched on the validation part of the N queried samples. A comparative variant has a
`control` twin: the same inputs per step with the comparison replaced by per-sample logit matching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ckd.config import StudentConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    method: str
    method_args: dict[str, Any] = field(default_factory=dict)
    augment: str = "auto"
    control_of: str | None = None
    note: str = ""
    # other `student.*` overrides, on top of POOL_OFF: the free pool inputs are off unless a recipe turns them on
    student: dict[str, Any] = field(default_factory=dict)
    comparative: dict[str, Any] = field(default_factory=dict)  # `comparative.*` overrides (group shape)


# What a recipe says of the pool term unless it says otherwise, so that a row never inherits the pool settings of
# the params file it runs on (the text example's `unlabelled_targets: neighbours` would turn kd_corrupt_pool into
# label propagation); the number of neighbours is the config's default
POOL_OFF: dict[str, Any] = {
    "unlabelled_weight": 0.0,
    "unlabelled_targets": "self",
    "unlabelled_neighbours": StudentConfig.model_fields["unlabelled_neighbours"].default,
}

# kd_corrupt_prop's settings, one at a time (tried on the AG News dev split): 5 or 30 neighbours, pool weight 3
PROP_SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("k5", {"unlabelled_neighbours": 5}),
    ("k30", {"unlabelled_neighbours": 30}),
    ("w3", {"unlabelled_weight": 3.0}),
]

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            "kd_plain",
            "kd",
            {"temperature": 4.0},
            augment="none",
            note="the paper's baseline: KD, T=4, no augmentation",
        ),
        Recipe("ce", "ce"),
        Recipe("kd", "kd", {"temperature": [2.0, 4.0]}),
        Recipe("kd_mse", "kd_mse"),
        Recipe("mixup", "mixup"),
        Recipe("rkd", "rkd"),
        Recipe("dist", "dist"),
        Recipe("ckd_paper", "ckd_paper"),
        Recipe("ckd_paper_control", "ckd_paper", {"compare": False}, control_of="ckd_paper"),
        Recipe("ckd", "ckd", note="the project's CKD loss"),
        Recipe("ckd_control", "ckd", {"compare": False}, control_of="ckd"),
        Recipe(
            "ckd_21",
            "ckd",
            comparative={"group_size": 2, "negatives": 1},
            note="the project's CKD loss on the paper's groups of 2 positives + 1 negative",
        ),
        Recipe(
            "ckd_21_control",
            "ckd",
            {"compare": False},
            control_of="ckd_21",
            comparative={"group_size": 2, "negatives": 1},
        ),
        Recipe("ckd_kd", "ckd_kd"),
        Recipe("ckd_kd_control", "ckd_kd", {"compare": False}, control_of="ckd_kd"),
        Recipe(
            "ckd_pool",
            "ckd",
            student={"unlabelled_weight": 1.0},
            note="the project's default recipe: ckd + FixMatch on the free, never-queried pool inputs",
        ),
        Recipe(
            "kd_pool",
            "kd",
            {"temperature": [2.0, 4.0]},
            student={"unlabelled_weight": 1.0},
            note="kd + the same use of the free pool inputs (is the gain comparative? no)",
        ),
        # tables and embeddings (issue 17): feature corruption is their augmentation, and their pool term
        Recipe(
            "kd_corrupt",
            "kd",
            {"temperature": [2.0, 4.0]},
            augment="corrupt",
            note="augmented KD for tables/embeddings: feature noise + dropout (ckd.augment.corrupt_features)",
        ),
        Recipe(
            "kd_corrupt_pool",
            "kd",
            {"temperature": [2.0, 4.0]},
            augment="corrupt",
            student={"unlabelled_weight": 1.0},
            note="kd_corrupt + consistency under corruption on the free pool",
        ),
        Recipe(
            "kd_prop",
            "kd",
            {"temperature": [2.0, 4.0]},
            student={"unlabelled_weight": 1.0, "unlabelled_targets": "neighbours"},
            note="kd + label propagation to the free pool (the teacher's answers on each input's nearest queried)",
        ),
        Recipe(
            "kd_corrupt_prop",
            "kd",
            {"temperature": [2.0, 4.0]},
            augment="corrupt",
            student={"unlabelled_weight": 1.0, "unlabelled_targets": "neighbours"},
            note="kd_corrupt + label propagation to the free pool",
        ),
        *(
            Recipe(
                f"kd_corrupt_prop_{tag}",
                "kd",
                {"temperature": [2.0, 4.0]},
                augment="corrupt",
                student={"unlabelled_weight": 1.0, "unlabelled_targets": "neighbours", **change},
                note=f"kd_corrupt_prop with {change}",
            )
            for tag, change in PROP_SETTINGS
        ),
        Recipe(
            "ckd_corrupt_pool",
            "ckd",
            augment="corrupt",
            student={"unlabelled_weight": 1.0},
            note="ckd + corruption + consistency under corruption on the free pool",
        ),
    ]
}

# The default recipe per modality, chosen on a dev split (natural images: bench/cifar10/results.md)
DEFAULT_BY_MODALITY = {"image": "ckd_pool"}
DEFAULT_RECIPES = ("ckd_pool", "ckd")  # the default recipe, or the CKD loss alone where it was not run
BASELINE_RECIPE = "kd_plain"
# The default recipe of each modality, chosen on its dev split (docs/benchmarks/tables-text.md); the modality's
# params file runs exactly it (tests/test_bench_equals_repro.py)
TABLE_DEFAULT_RECIPE = "kd_pool"
TEXT_DEFAULT_RECIPE = "kd_corrupt_prop_k5"  # dev: bench/ag_news_v2/propagation.md
