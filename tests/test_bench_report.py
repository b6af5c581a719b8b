from bench.report import accuracy_by_seed, markdown, paired_difference


def rows():
    out = []
    for seed, (ours, control, base) in enumerate([(0.90, 0.88, 0.80), (0.92, 0.89, 0.82), (0.91, 0.90, 0.81)]):
        for variant, acc, budget in (("ckd", ours, 100), ("ckd_control", control, 100), ("kd_plain", base, 300)):
            out.append({"regime": "labelled", "variant": variant, "budget": budget, "seed": seed, "test_accuracy": acc})
    return out


def test_paired_difference_by_hand():
    table = accuracy_by_seed(rows())
    mean, std, n = paired_difference(table, "labelled", "ckd", "ckd_control", 100)
    assert n == 3 and abs(mean - 2.0) < 1e-9 and abs(std - 1.0) < 1e-9  # diffs 2, 3, 1 points
    assert paired_difference(table, "labelled", "ckd", "kd_plain", 100) is None


def test_markdown_marks_and_target():
    text = markdown(
        rows(),
        {
            "dataset": "toy",
            "pool": 10,
            "test": 5,
            "teacher_test_accuracy": 0.99,
            "student": "mlp",
            "steps": 10,
            "lr_grid": [0.1],
        },
    )
    assert "| ckd - ckd_control | +2.0 +- 1.0 (n=3) (>1 std) |" in text
    assert "| 100 vs 300 | 91.0 +- 1.0 | 81.0 +- 1.0 | met |" in text


def test_spread_separates_data_seeds_from_student_seeds():
    from bench.report import spread

    # data seed 0: 80, 82, 84 (std 2); data seed 1: 90, 91, 92 (std 1); per-seed means 82 and 91
    runs = {(0, 0): 0.80, (0, 1): 0.82, (0, 2): 0.84, (1, 3): 0.90, (1, 4): 0.91, (1, 5): 0.92}
    result = spread(runs)
    assert abs(result["mean"] - 86.5) < 1e-9 and abs(result["worst"] - 80.0) < 1e-9
    assert abs(result["student_seed_std"] - 1.5) < 1e-9
    assert abs(result["data_seed_std"] - 9 / 2**0.5) < 1e-9


def test_rows_without_student_seed_keep_the_data_seed_and_pair_by_both():
    table = accuracy_by_seed(
        rows()
        + [{"regime": "labelled", "variant": "ckd", "budget": 100, "seed": 1, "student_seed": 0, "test_accuracy": 0.5}]
    )
    assert table[("labelled", "ckd", 100)][(1, 1)] == 0.92 and table[("labelled", "ckd", 100)][(1, 0)] == 0.5
    mean, _, n = paired_difference(table, "labelled", "ckd", "ckd_control", 100)
    assert n == 3 and abs(mean - 2.0) < 1e-9  # the extra run has no control twin and is not paired
