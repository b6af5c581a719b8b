"""bench/tables_text_report.py --students: the student's own spread beside the data seeds', and the target paired
by student seed, on a small results tree written here."""

import csv
import json
from pathlib import Path

from bench.tables_text_report import write_addendum, write_students

FIELDS = ["dataset", "budget", "seed", "student_seed", "variant", "test_accuracy", "overrides"]


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS + (["split", "selection"] if "split" in rows[0] else []))
        writer.writeheader()
        writer.writerows(rows)


def row(variant: str, budget: int, seed: int, student: int, accuracy: float, picked: str, **extra: str) -> dict:
    overrides = json.dumps({"data.selection": picked})  # how the runner records the selection
    return dict(
        dataset="t",
        budget=budget,
        seed=seed,
        student_seed=student,
        variant=variant,
        test_accuracy=accuracy,
        overrides=overrides,
        **extra,
    )


def test_student_seeds_table_and_target_paired_by_student_seed(tmp_path: Path) -> None:
    source, target = tmp_path / "runs", tmp_path / "report"
    mine = [0.90, 0.92, 0.91]  # the default at N = 100, student seeds 0-2 (data seed 0)
    kd = [0.89, 0.90, 0.90]  # augmented KD at 300, the same student seeds
    write_rows(
        source / "student_default" / "results.csv",
        [row("kd_pool", 100, 0, k, a, "typiclust") for k, a in enumerate(mine)],
    )
    write_rows(
        source / "student_kd" / "results.csv", [row("kd_corrupt", 300, 0, k, a, "random") for k, a in enumerate(kd)]
    )
    # the committed test table: one student seed per data seed (seed = student seed), a wider spread
    write_rows(
        target / "results.csv",
        [
            row("kd_pool+typiclust", 100, s, s, a, "typiclust", split="test", selection="typiclust")
            for s, a in enumerate([0.80, 0.90, 1.00])
        ]
        + [row("kd_pool", 100, 0, 0, 0.5, "random", split="dev", selection="random")],
    )
    (target / "info.json").write_text(json.dumps({"default_recipe": "kd_pool+typiclust"}))

    write_students(source, target)

    text = (target / "students.md").read_text()
    # typiclust rows are named as the committed table names them; spread over student seeds vs over data seeds
    assert "| kd_pool+typiclust | 100 | 91.00 +- 1.00 (n=3) | 90.00 +- 10.00 (n=3) |" in text
    assert "| kd_corrupt | 300 | 89.67 +- 0.58 (n=3) | - |" in text
    # default - KD at 3N, paired by student seed: +1, +2, +1 points -> mean +1.33, sd 0.577, t(0.975, 2) = 4.303
    assert "| 100 | +1.33 [-0.10, +2.77] (n=3, no difference shown) | - |" in text
    with open(target / "students.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 6


def test_addendum_compares_a_later_candidate_with_its_controls_on_dev_and_the_committed_rows_on_test(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "runs", tmp_path / "report"
    later = [0.86, 0.88, 0.87]  # kd_prop on dev at N = 100 and 300, data seeds 0-2 (student seed = data seed)
    control = [0.85, 0.85, 0.86]  # its consistency control, run in the same part
    dev = [row("kd_prop", n, s, s, a + (n == 300) * 0.02, "typiclust") for s, a in enumerate(later) for n in (100, 300)]
    dev += [
        row("kd_pool", n, s, s, a + (n == 300) * 0.02, "typiclust") for s, a in enumerate(control) for n in (100, 300)
    ]
    write_rows(source / "dev_prop" / "results.csv", dev)
    write_rows(source / "test_prop" / "results.csv", [row("kd_prop", 100, s, s, 0.90, "typiclust") for s in range(3)])
    committed = [  # the former default on test and augmented KD at 3N: rows the addendum pairs with
        row("kd_pool+typiclust", 100, s, s, a, "typiclust", split="test", selection="typiclust")
        for s, a in enumerate([0.88, 0.89, 0.89])
    ] + [
        row("kd_corrupt", 300, s, s, a, "random", split="test", selection="random")
        for s, a in enumerate([0.9, 0.91, 0.89])
    ]
    write_rows(target / "results.csv", committed)
    (target / "info.json").write_text(json.dumps({"default_recipe": "kd_pool+typiclust"}))

    write_addendum("prop", "kd_prop+typiclust", source, target, ("dev_prop", "test_prop"))

    text = (target / "prop.md").read_text()
    # dev: +1, +3, +1 points over the control at both budgets: mean +1.67, sd 1.155, t(0.975, 2) = 4.303
    assert "| label propagation instead of consistency | kd_prop+typiclust - kd_pool+typiclust | " in text
    assert "+1.67 [-1.20, +4.54] (n=3, no difference shown)" in text
    assert "Dev accuracy averaged over N = 100 and 300: kd_prop+typiclust 88.00, kd_pool+typiclust 86.33." in text
    # test: beside the former default (+2, +1, +1) and augmented KD at 3N (0, -1, +1), paired by seeds
    assert (
        "| 100 | 90.00 +- 0.00 (n=3) | 88.67 +- 0.58 (n=3) | +1.33 [-0.10, +2.77] (n=3, no difference shown) |" in text
    )
    assert "+0.00 [-2.48, +2.48] (n=3, no difference shown)" in text
    with open(target / "prop.csv") as handle:  # only the later runs, the committed rows stay where they are
        assert len(list(csv.DictReader(handle))) == 15

    # a candidate with no test rows: the addendum says so, and whether dev chose it
    write_addendum("dev_only", "kd_prop+typiclust", source, target, ("dev_prop",))
    assert "`kd_prop+typiclust` was not run on the test split.\n" in (target / "dev_only.md").read_text()
    bare = tmp_path / "bare"  # no committed test rows at all
    write_rows(bare / "results.csv", [row("kd", 100, 0, 0, 0.5, "random", split="dev", selection="random")])
    (bare / "info.json").write_text(json.dumps({"default_recipe": "kd"}))
    write_addendum("control", "kd_pool+typiclust", source, bare, ("dev_prop",))
    below = "`kd_pool+typiclust` was not run on the test split: on dev it is below `kd_prop+typiclust`."
    assert below in (bare / "control.md").read_text()
