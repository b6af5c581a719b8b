"""Issue 17's tables-and-text report: dev choice, test tables with paired 95% t-intervals, a plot.

    python bench/tables_text_report.py bench_results/pendigits bench/pendigits
    python bench/tables_text_report.py bench_results/ag_news_v2 bench/ag_news_v2
    python bench/tables_text_report.py --students bench_results/pendigits bench/pendigits
    python bench/tables_text_report.py --addendum propagation kd_corrupt_prop+typiclust \
        bench_results/ag_news_v2 bench/ag_news_v2 dev_prop test_prop


Reads the benchmark folders one `run.sh` writes (dev_random, dev_typiclust, test_random, test_typiclust,
test_kd, test_ceiling: each a `results.csv` + `info.json` of `bench` / `bench.text`) and writes into
the second folder: results.csv (every row, `selection` added; typiclust rows named `<recipe>+typiclust`),
results.md (the tables) and accuracy_vs_calls.png.

The default recipe is chosen on the DEV rows only: the candidate with the highest dev accuracy averaged over
the budgets N = 100 and 300. Paired differences pair runs with the same (data seed, student seed); the interval
is mean +- t(0.975, n - 1) * sd / sqrt(n) over those pairs.

`--students` reads only the `run.sh student` parts (student_default, student_kd: data seed 0, student seeds 0-4)
and writes students.csv and students.md beside the committed results: the student's own spread (data seed fixed)
next to the test table's spread over data seeds, and the target's paired differences over student seeds.
`--addendum NAME RECIPE SOURCE TARGET PART...` reads later candidates (parts named dev_* and test_*) and writes
NAME.md beside the committed results: the candidates beside their controls on dev, and RECIPE at N on test
against the committed test rows (KD at 3N and 5N, the former default).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from scipy import stats

PARTS = ("dev_random", "dev_typiclust", "test_random", "test_typiclust", "test_kd", "test_ceiling")
STUDENT_PARTS = ("student_default", "student_kd")  # `run.sh student`: data seed 0, student seeds 0-4
BUDGETS = (100, 300)
AUGMENTED_KD = "kd_corrupt"  # KD with the tables'/embeddings' augmentation (feature corruption)
# (a, b, what a adds to b): each ingredient beside its matched control
INGREDIENTS = [
    ("kd_pool", "kd", "pool consistency term (no corruption of queried rows)"),
    ("kd_corrupt_pool", "kd_corrupt", "pool consistency term (with corruption of queried rows)"),
    ("kd_corrupt", "kd", "corruption of the queried rows (augmented KD)"),
    ("kd_corrupt_pool", "kd_pool", "corruption of the queried rows, with the pool term"),
    ("kd_pool+typiclust", "kd_pool", "TypiClust selection instead of random"),
    ("kd_corrupt_pool+typiclust", "kd_corrupt_pool", "TypiClust selection instead of random"),
    ("kd_corrupt_prop+typiclust", "kd_corrupt+typiclust", "label propagation to the pool (vs no pool term)"),
    ("kd_corrupt_prop+typiclust", "kd_corrupt_pool+typiclust", "label propagation instead of consistency"),
    ("kd_corrupt_prop_k5+typiclust", "kd_corrupt_prop+typiclust", "label propagation: 5 neighbours instead of 10"),
    ("kd_corrupt_prop_k30+typiclust", "kd_corrupt_prop+typiclust", "label propagation: 30 neighbours instead of 10"),
    ("kd_corrupt_prop_w3+typiclust", "kd_corrupt_prop+typiclust", "label propagation: pool weight 3 instead of 1"),
    ("kd_prop+typiclust", "kd+typiclust", "label propagation to the pool (vs no pool term)"),
    ("kd_prop+typiclust", "kd_pool+typiclust", "label propagation instead of consistency"),
]


def split_info(infos: dict, split: str) -> dict:
    """The info.json of a part of that split (they share the split and the teacher), else of any part."""
    return next((infos[p] for p in PARTS if p.startswith(split) and p in infos), next(iter(infos.values())))


def load(folder: Path, parts: tuple[str, ...] = PARTS) -> tuple[list[dict], dict]:
    rows, infos = [], {}
    for part in parts:
        path = folder / part / "results.csv"
        if not path.exists():
            continue
        if (folder / part / "info.json").exists():  # bench writes it at the end: a part cut short has none
            infos[part] = json.loads((folder / part / "info.json").read_text())
        with open(path) as handle:
            for row in csv.DictReader(handle):
                row["split"] = part.split("_")[0]
                if part not in PARTS:  # one folder may mix selections: the row's own overrides say which
                    selection = json.loads(row.get("overrides") or "{}").get("data.selection", "random")
                else:
                    selection = "typiclust" if part.endswith("typiclust") else "random"
                row["selection"] = selection
                if selection != "random":
                    row["variant"] = f"{row['variant']}+{selection}"
                rows.append(row)
    return rows, infos


def runs(rows: list[dict], split: str) -> dict[tuple[str, int], dict[tuple[int, int], float]]:
    """(variant, budget) -> {(data seed, student seed): accuracy in points}."""
    table: dict[tuple[str, int], dict[tuple[int, int], float]] = defaultdict(dict)
    for row in rows:
        if row["split"] == split:
            key = (int(row["seed"]), int(row["student_seed"]))
            table[(row["variant"], int(row["budget"]))][key] = 100 * float(row["test_accuracy"])
    return table


def interval(diffs: list[float]) -> str:
    n = len(diffs)
    if n < 2:
        return "-"
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    verdict = "better" if mean - half > 0 else ("worse" if mean + half < 0 else "no difference shown")
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] (n={n}, {verdict})"


def paired(left: dict, right: dict) -> list[float]:
    return [left[k] - right[k] for k in sorted(set(left) & set(right))]


def mean_sd(values: dict) -> str:
    v = list(values.values())
    return f"{statistics.fmean(v):.2f} +- {statistics.stdev(v) if len(v) > 1 else 0:.2f} (n={len(v)})"


def dev_scores(dev: dict, candidates: set[str] | None = None) -> dict[str, float]:
    """Each candidate's dev accuracy averaged over BUDGETS (those with every budget present; all by default)."""
    names = {variant for variant, _ in dev} if candidates is None else candidates
    return {
        c: statistics.fmean(statistics.fmean(dev[(c, b)].values()) for b in BUDGETS)
        for c in names
        if all((c, b) in dev for b in BUDGETS)
    }


def choose_default(dev: dict) -> tuple[str, dict[str, float]]:
    """The candidate with the best dev accuracy averaged over BUDGETS (every budget present)."""
    score = dev_scores(dev)
    return max(score, key=lambda c: score[c]), score


def section(table: dict, title: str) -> list[str]:
    lines = [f"### {title}", "", "| variant | " + " | ".join(f"N={b}" for b in BUDGETS) + " |",
             "|---|" + "---|" * len(BUDGETS)]  # fmt: skip
    for variant in sorted({v for v, b in table if b in BUDGETS}):
        cells = [mean_sd(table[(variant, b)]) if (variant, b) in table else "-" for b in BUDGETS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "Each ingredient beside its matched control (paired by data seed and student seed; 95% t-interval,"
              " points):", "", "| ingredient | a - b | " + " | ".join(f"N={b}" for b in BUDGETS) + " |",
              "|---|---|" + "---|" * len(BUDGETS)]  # fmt: skip
    for a, b, what in INGREDIENTS:
        cells = [interval(paired(table.get((a, n), {}), table.get((b, n), {}))) for n in BUDGETS]
        if set(cells) == {"-"}:
            continue
        lines.append(f"| {what} | {a} - {b} | " + " | ".join(cells) + " |")
    return lines + [""]


def target_lines(test: dict, default: str) -> list[str]:
    """The target table: `default` at N against KD (augmented and plain) at 3N and 5N, paired (test)."""
    lines = ["### Target: default recipe at N against KD at 3N and 5N (test)", "",
              f"Augmented KD = `{AUGMENTED_KD}` (KD, T in {{2, 4}} on validation, with feature corruption "
              "`student.augment: corrupt`: Gaussian noise 0.1 std + 10% of features reset to their pool mean); "
              "plain KD = `kd` (the same without corruption), where it was run.", "",
              "| N | default at N | KD | KD at 3N | default - KD at 3N | KD at 5N | default - KD at 5N |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for n in BUDGETS:
        mine = test.get((default, n), {})
        for kd_variant in (AUGMENTED_KD, "kd"):
            cells = [mean_sd(mine) if mine else "-", kd_variant]
            for factor in (3, 5):
                other = test.get((kd_variant, factor * n), {})
                cells += [mean_sd(other) if other else "-", interval(paired(mine, other)) if other and mine else "-"]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def markdown(rows: list[dict], infos: dict, default: str, score: dict[str, float]) -> str:
    dev, test = runs(rows, "dev"), runs(rows, "test")
    info = split_info(infos, "test")
    lines = [f"## {info['dataset']}", "",
             f"Pool {info['pool']}, test {info['test']}; teacher test accuracy "
             f"{100 * info['teacher_test_accuracy']:.2f};"
             f" student {info['student']}, {info['steps']} steps, lr grid {info['lr_grid']} (chosen on validation).",
             "", "Dev choice (mean dev accuracy over N = 100 and 300): "
             + ", ".join(f"{c} {s:.2f}" for c, s in sorted(score.items(), key=lambda x: -x[1]))
             + f". **Default recipe: {default}.**", ""]  # fmt: skip
    dev_info = split_info(infos, "dev")
    lines += [f"Dev split: pool {dev_info['pool']}, dev test {dev_info['test']} (both from the pool side); teacher "
              f"accuracy on the dev test {100 * dev_info['teacher_test_accuracy']:.2f}.", ""]  # fmt: skip
    lines += section(dev, "Dev split (the choice is made here)")
    lines += section(test, "Test split (reported once the choice was made)")
    ceiling = [v for (variant, b), v in test.items() if variant == "ce" and b not in BUDGETS]
    lines += target_lines(test, default)
    if ceiling:
        lines += [f"Ceiling: the same student with labels for every pool input: {mean_sd(ceiling[0])}; "
                  f"the teacher: {100 * info['teacher_test_accuracy']:.2f}.", ""]  # fmt: skip
    for kd_variant in (AUGMENTED_KD, "kd"):
        kd_rows = sorted((b, mean_sd(v)) for (variant, b), v in test.items() if variant == kd_variant)
        lines += [f"`{kd_variant}` by budget (test): " + ", ".join(f"{b}: {m}" for b, m in kd_rows), ""]
    return "\n".join(lines)


def students_markdown(students: dict, test: dict, default: str) -> str:
    """The student's own spread (one data seed, several student seeds) beside the spread over data seeds (test
    table: student seed = data seed), and the target's paired differences over student seeds."""
    lines = ["### Student seeds apart from data seeds (test)", "",
             "Data seed 0 (the same inputs asked about, the same answers), student seeds 0-4 (initialisation, batch "
             "order, train/validation split): `bash run.sh student`. The test table's spread is over data seeds "
             "with student seed = data seed, so it holds both sources.", "",
             "| variant | N | student seeds (data seed 0) | data seeds (test table) |",
             "|---|---|---|---|"]  # fmt: skip
    for variant, n in sorted(students):
        across = test.get((variant, n))
        lines.append(f"| {variant} | {n} | {mean_sd(students[(variant, n)])} | {mean_sd(across) if across else '-'} |")
    lines += ["", f"Target over student seeds: default ({default}) at N minus augmented KD (`{AUGMENTED_KD}`) at 3N "
              "and 5N, paired by student seed (95% t-interval, points):", "",
              "| N | default - KD at 3N | default - KD at 5N |", "|---|---|---|"]  # fmt: skip
    for n in BUDGETS:
        mine = students.get((default, n), {})
        cells = [interval(paired(mine, students.get((AUGMENTED_KD, f * n), {}))) for f in (3, 5)]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""])


def write_students(source: Path, target: Path) -> None:
    """`--students`: students.csv and students.md from the student parts, beside the committed results."""
    rows, _ = load(source, STUDENT_PARTS)
    if not rows:
        raise SystemExit(f"{source}: no {' or '.join(STUDENT_PARTS)} results: run `bash run.sh student` first")
    with open(target / "results.csv") as handle:  # the committed test table, for the spread over data seeds
        committed = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    default = json.loads((target / "info.json").read_text())["default_recipe"]
    with open(target / "students.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    (target / "students.md").write_text(students_markdown(runs(rows, "student"), runs(committed, "test"), default))
    print(f"wrote {target}/students.csv, students.md (default recipe {default})")


def write_addendum(name: str, recipe: str, source: Path, target: Path, parts: tuple[str, ...]) -> None:
    """`--addendum`: later candidates (dev_* and test_* parts) beside their controls on dev, and `recipe` on test
    against the committed test rows (KD at 3N and 5N, the former default at N), into NAME.md and NAME.csv."""
    rows, _ = load(source, parts)
    if not rows:
        raise SystemExit(f"{source}: no results in {', '.join(parts)}")
    with open(target / "results.csv") as handle:
        committed = list(csv.DictReader(handle))
    former = json.loads((target / "info.json").read_text())["default_recipe"]
    dev = runs(committed + rows, "dev")
    test = runs(committed + rows, "test")
    new = sorted({row["variant"] for row in rows})
    lines = [f"### A later candidate, `{recipe}`; the variants run for it: {', '.join(new)}", ""]
    lines += section({k: v for k, v in dev.items() if k[0] in new or any(k[0] == b for a, b, _ in INGREDIENTS
                                                                          if a in new)},
                     "Dev split (the choice is made here)")  # fmt: skip
    score = dev_scores(dev, {*new, former})
    lines += ["Dev accuracy averaged over N = 100 and 300: "
              + ", ".join(f"{c} {v:.2f}" for c, v in sorted(score.items(), key=lambda x: -x[1])) + ".", ""]  # fmt: skip
    if not any((recipe, n) in test for n in BUDGETS):  # a candidate the dev split did not choose stays off test
        best = max(score, key=lambda c: score[c])
        lines += [f"`{recipe}` was not run on the test split"
                  + ("." if score.get(recipe) == score[best] else f": on dev it is below `{best}`."), ""]  # fmt: skip
    else:
        lines += [f"Test: `{recipe}` at N beside the former default `{former}` (paired by data seed and student seed):",
                  "", "| N | " + f"{recipe} | {former} | difference |", "|---|---|---|---|"]  # fmt: skip
        for n in BUDGETS:
            mine, old = test.get((recipe, n), {}), test.get((former, n), {})
            cells = [mean_sd(mine) if mine else "-", mean_sd(old) if old else "-", interval(paired(mine, old))]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines += [""] + target_lines(test, recipe)
    with open(target / f"{name}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    (target / f"{name}.md").write_text("\n".join(lines))
    print(f"wrote {target}/{name}.md, {name}.csv")


def plot(rows: list[dict], default: str, infos: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = runs(rows, "test")
    fig, ax = plt.subplots(figsize=(6, 4))
    for variant in sorted({default, AUGMENTED_KD, "kd"}):
        points = sorted((b, statistics.fmean(v.values())) for (name, b), v in test.items() if name == variant)
        points = [p for p in points if p[0] <= 1500]
        if points:
            ax.plot(*zip(*points), marker="o", label=variant + (" (default)" if variant == default else ""))
    for (name, b), v in test.items():
        if name == "ce" and b > 1500:
            ax.axhline(statistics.fmean(v.values()), color="grey", linestyle="--", label=f"ceiling (labels, {b})")
    info = split_info(infos, "test")
    ax.axhline(100 * info["teacher_test_accuracy"], color="black", linestyle=":", label="teacher")
    ax.set_xscale("log")
    ax.set_xlabel("teacher calls")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{info['dataset']}: test accuracy vs teacher calls")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--addendum":
        write_addendum(argv[1], argv[2], Path(argv[3]), Path(argv[4]), tuple(argv[5:]))
        return
    if argv and argv[0] == "--students":
        write_students(Path(argv[1]), Path(argv[2]))
        return
    source, target = Path(argv[0]), Path(argv[1])
    rows, infos = load(source)
    default, score = choose_default(runs(rows, "dev"))
    target.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0].keys())
    with open(target / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (target / "info.json").write_text(json.dumps({**infos, "default_recipe": default, "dev_score": score}, indent=2))
    (target / "results.md").write_text(markdown(rows, infos, default, score))
    plot(rows, default, infos, target / "accuracy_vs_calls.png")
    print(f"default recipe on dev: {default}; wrote {target}/results.csv, results.md, accuracy_vs_calls.png")


if __name__ == "__main__":
    main(sys.argv[1:])
