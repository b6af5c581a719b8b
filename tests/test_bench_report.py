from ckd.bench.report import accuracy_by_seed, markdown, paired_difference


def rows():
    out = []
    for seed, (ours, control, base) in enumerate([(0.90, 0.88, 0.80), (0.92, 0.89, 0.82), (0.91, 0.90, 0.81)]):
        for variant, acc, budget in (("ckd", ours, 100), ("ckd_control", control, 100), ("kd_plain", base, 300)):
            out.append({"regime": "labelled", "variant": variant, "budget": budget, "seed": seed,
                        "test_accuracy": acc})
    return out


def test_paired_difference_by_hand():
    table = accuracy_by_seed(rows())
    mean, std, n = paired_difference(table, "labelled", "ckd", "ckd_control", 100)
    assert n == 3 and abs(mean - 2.0) < 1e-9 and abs(std - 1.0) < 1e-9  # diffs 2, 3, 1 points
    assert paired_difference(table, "labelled", "ckd", "kd_plain", 100) is None


def test_markdown_marks_and_target():
    text = markdown(rows(), {"dataset": "toy", "pool": 10, "test": 5, "teacher_test_accuracy": 0.99,
                             "student": "mlp", "steps": 10, "lr_grid": [0.1]})
    assert "| ckd - ckd_control | +2.0 +- 1.0 (n=3) (>1 std) |" in text
    assert "| 100 vs 300 | 91.0 +- 1.0 | 81.0 +- 1.0 | met |" in text
