"""The benchmark's Markdown table, paired differences and plot of accuracy against teacher calls."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from bench.recipes import BASELINE_RECIPE, DEFAULT_RECIPES, RECIPES

PAIRS = [
    ("ckd", "ckd_control"),
    ("ckd_21", "ckd_21_control"),
    ("ckd_kd", "ckd_kd_control"),
    ("ckd_paper", "ckd_paper_control"),
    ("ckd", "kd"),
    ("ckd", "kd_plain"),
    ("ckd_pool", "kd_pool"),
    ("ckd_pool", "ckd"),
    ("ckd_pool", "kd_plain"),
]


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def accuracy_by_seed(rows: list[dict]) -> dict[tuple, dict[tuple[int, int], float]]:
    """(regime, variant, budget) -> {(data seed, student seed): test accuracy}; rows written before the
    student-seed axis existed trained with student seed = data seed."""
    table: dict[tuple, dict[tuple[int, int], float]] = defaultdict(dict)
    for row in rows:
        seed = int(row["seed"])
        student_seed = seed if row.get("student_seed") in (None, "") else int(row["student_seed"])
        table[(row["regime"], row["variant"], int(row["budget"]))][(seed, student_seed)] = float(row["test_accuracy"])
    return table


def spread(runs: dict[tuple[int, int], float]) -> dict[str, float]:
    """Mean, worst run, the std over data seeds of the per-data-seed means, and the std over student seeds
    for a fixed data seed (averaged over data seeds): what one run is worth, in points."""
    by_data_seed: dict[int, list[float]] = defaultdict(list)
    for (seed, _), accuracy in runs.items():
        by_data_seed[seed].append(100 * accuracy)
    means = [statistics.fmean(v) for v in by_data_seed.values()]
    within = [statistics.stdev(v) for v in by_data_seed.values() if len(v) > 1]
    values = [100 * a for a in runs.values()]
    return {
        "mean": statistics.fmean(values),
        "worst": min(values),
        "data_seed_std": statistics.stdev(means) if len(means) > 1 else 0.0,
        "student_seed_std": statistics.fmean(within) if within else float("nan"),
    }


def paired_difference(table, regime, a, b, budget) -> tuple[float, float, int] | None:
    left, right = table.get((regime, a, budget), {}), table.get((regime, b, budget), {})
    seeds = sorted(set(left) & set(right))
    if not seeds:
        return None
    diffs = [100 * (left[s] - right[s]) for s in seeds]
    mean, std = _mean_std(diffs)
    return mean, std, len(seeds)


def _format_diff(result) -> str:
    if result is None:
        return "-"
    mean, std, n = result
    mark = " (>1 std)" if n > 1 and abs(mean) > std else ""
    return f"{mean:+.1f} +- {std:.1f} (n={n}){mark}"


def _variants(rows: list[dict]) -> list[str]:
    """The variants in the rows: names that are no recipe (e.g. a benchmark's `default`) first, then the recipes'
    order."""
    present = list(dict.fromkeys(r["variant"] for r in rows))
    return [v for v in present if v not in RECIPES] + [v for v in RECIPES if v in present]


def markdown(rows: list[dict], info: dict) -> str:
    table = accuracy_by_seed(rows)
    regimes = sorted({r["regime"] for r in rows}, key=lambda r: r != "labelled")
    budgets = sorted({int(r["budget"]) for r in rows})
    variants = _variants(rows)
    notes = info.get("variant_notes") or {}
    same = info.get("same_configuration") or {}
    out = [
        f"## {info['dataset']}: pool {info['pool']}, test {info['test']}, stand-in teacher "
        f"{100 * info['teacher_test_accuracy']:.1f}% test accuracy; student {info['student']}; "
        f"{info['steps']} Adam steps for every method; lr grid {info['lr_grid']} chosen on validation; "
        f"selection {info.get('selection', 'random')}, group size {info.get('group_size', 1)}, "
        f"extra method args {info.get('method_args', '{}')}, augmentation {info.get('augment', 'per recipe')}",
        "",
    ]
    for regime in regimes:
        out += [
            f"### {regime}: test accuracy (%), mean +- std over seeds (teacher calls = N)",
            "",
            "| variant | " + " | ".join(f"N={b}" for b in budgets) + " |",
            "|---|" + "---|" * len(budgets),
        ]
        for variant in variants:
            cells = []
            for budget in budgets:
                accs = list(table.get((regime, variant, budget), {}).values())
                if accs:
                    mean, std = _mean_std([100 * a for a in accs])
                    cells.append(f"{mean:.1f} +- {std:.1f} ({len(accs)})")
                else:
                    cells.append("-")
            recipe = RECIPES.get(variant)
            label = variant + (f" (control of {recipe.control_of})" if recipe and recipe.control_of else "")
            label += f" ({notes[variant]})" if variant in notes else ""
            label += f" (= {same[variant]}: the same configuration, trained once)" if variant in same else ""
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        default = info.get("default_variant") or next(
            (name for name in DEFAULT_RECIPES if any(r["variant"] == name for r in rows)), DEFAULT_RECIPES[-1]
        )
        spread_rows = []
        for variant in (default, BASELINE_RECIPE):
            for budget in budgets:
                runs = table.get((regime, variant, budget), {})
                if runs:
                    sp = spread(runs)
                    spread_rows.append(
                        f"| {variant} | {budget} | {len(runs)} | {sp['mean']:.1f} | {sp['worst']:.1f} | "
                        f"{sp['mean'] - sp['worst']:.1f} | {sp['data_seed_std']:.1f} | "
                        f"{sp['student_seed_std']:.1f} |"
                    )
        if spread_rows:
            out += [
                "",
                "What one run is worth: spread over data seeds (which N inputs are queried) and over student "
                "seeds (init, batch order, train/validation split) for a fixed data seed, points:",
                "",
                "| variant | N | runs | mean | worst | mean - worst | std over data seeds (of their means) | "
                "std over student seeds (within a data seed) |",
                "|---|---|---|---|---|---|---|---|",
                *spread_rows,
            ]
        out += [
            "",
            "Paired differences, points (same seeds, so the same N queried samples); "
            "(>1 std) marks |mean| > std of the paired differences:",
            "",
            "| comparison | " + " | ".join(f"N={b}" for b in budgets) + " |",
            "|---|" + "---|" * len(budgets),
        ]
        for a, b in PAIRS:
            cells = [_format_diff(paired_difference(table, regime, a, b, budget)) for budget in budgets]
            if any(cell != "-" for cell in cells):
                out.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
        target = []
        for budget in budgets:
            if 3 * budget in budgets:
                ours = table.get((regime, default, budget), {})
                base = table.get((regime, BASELINE_RECIPE, 3 * budget), {})
                if ours and base:
                    m1, s1 = _mean_std([100 * v for v in ours.values()])
                    m2, s2 = _mean_std([100 * v for v in base.values()])
                    verdict = "met" if m1 >= m2 else "not met"
                    target.append(
                        f"| {budget} vs {3 * budget} | {m1:.1f} +- {s1:.1f} | {m2:.1f} +- {s2:.1f} | {verdict} |"
                    )
        if target:
            out += [
                "",
                f"Accuracy per teacher call: `{default}` at N calls vs `{BASELINE_RECIPE}` "
                "(KD, T=4, no augmentation) at 3N calls:",
                "",
                f"| N vs 3N | {default} at N | {BASELINE_RECIPE} at 3N | target |",
                "|---|---|---|---|",
                *target,
            ]
        out.append("")
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = accuracy_by_seed(rows)
    regimes = sorted({r["regime"] for r in rows}, key=lambda r: r != "labelled")
    budgets = sorted({int(r["budget"]) for r in rows})
    fig, axes = plt.subplots(1, len(regimes), figsize=(7 * len(regimes), 5), squeeze=False, sharey=True)
    colours = plt.get_cmap("tab20").colors
    for ax, regime in zip(axes[0], regimes):
        order = [*RECIPES, *(v for v in _variants(rows) if v not in RECIPES)]  # a recipe keeps its colour
        for variant in _variants(rows):
            number = order.index(variant)
            points = [
                (b, [100 * v for v in table[(regime, variant, b)].values()])
                for b in budgets
                if (regime, variant, b) in table
            ]
            if not points:
                continue
            xs = [b for b, _ in points]
            means = [statistics.fmean(v) for _, v in points]
            stds = [statistics.stdev(v) if len(v) > 1 else 0 for _, v in points]
            style = ":" if variant in RECIPES and RECIPES[variant].control_of else "-"
            width = 2.5 if variant in (*DEFAULT_RECIPES, BASELINE_RECIPE) or variant not in RECIPES else 1.2
            ax.errorbar(
                xs,
                means,
                yerr=stds,
                label=variant,
                linestyle=style,
                linewidth=width,
                marker="o",
                markersize=3,
                capsize=2,
                color=colours[number % len(colours)],
            )
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_xlabel("teacher calls (N)")
        ax.set_title(regime)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows: list[dict], info: dict, out: Path) -> None:
    (out / "results.md").write_text(markdown(rows, info))
    plot(rows, out / "accuracy_vs_calls.png")


def main(argv: list[str] | None = None) -> None:
    """Re-render results.md and the plot of a finished benchmark folder: python -m bench.report DIR"""
    import csv
    import json
    import sys

    folder = Path((argv if argv is not None else sys.argv[1:])[0])
    with open(folder / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    write_report(rows, json.loads((folder / "info.json").read_text()), folder)


if __name__ == "__main__":
    main()
