"""The purse on the command line (issue 20): `ledger export --batches` (one row per batch: time, run,
status, tokens, cost), `ledger summary` naming each teacher beside its hash, and `ledger history`."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import yaml

from ckd.ledger import BATCH_COLUMNS, main
from ckd.store import open_store

TEACHER = "openai:http://127.0.0.1:1/v1:standin-llm:0123456789abcdef"
NAME = "standin-llm at http://127.0.0.1:1/v1 (OpenAI-compatible chat completions)"
OTHER = "onnx:abcdef0123456789abcdef01:logits"


def one_batch(store, teacher, run, sample_id, budget=100):
    digest = f"{sample_id:064x}"
    return store.reserve(teacher, run, [sample_id], [digest], budget).batch, digest


@pytest.fixture
def purse(tmp_path):
    """Two runs: the first answers two inputs (one through a Batch API job), has one rejected, one lost and
    one refused; the second (another teacher) answers one."""
    spec = str(tmp_path / "store")
    store = open_store(spec)
    try:
        run = store.open_run(TEACHER, NAME)
        batch, digest = one_batch(store, TEACHER, run, 1)
        store.write_answers(
            batch, [digest], np.zeros((1, 4), np.float32), {"prompt_tokens": 100, "completion_tokens": 1}
        )
        batch, digest = one_batch(store, TEACHER, run, 2)
        store.set_remote([batch], "batch:batch_abc123")
        store.write_answers(
            batch, [digest], np.zeros((1, 4), np.float32), {"prompt_tokens": 200, "completion_tokens": 1}
        )
        batch, _ = one_batch(store, TEACHER, run, 3)
        store.mark_rejected(
            batch, "not a label word", '{"answer": "Unsure"}', {"prompt_tokens": 50, "completion_tokens": 2}
        )
        batch, _ = one_batch(store, TEACHER, run, 4)
        store.mark_lost(batch, "ReadTimeout after the request left")
        batch, _ = one_batch(store, TEACHER, run, 5)
        store.mark_refused(batch, "HTTP 400: bad request")
        store.close_run(run)
        run = store.open_run(OTHER, "ONNX file models/teacher.onnx, output logits")
        batch, digest = one_batch(store, OTHER, run, 6)
        store.write_answers(batch, [digest], np.zeros((1, 4), np.float32))
        store.close_run(run)
    finally:
        store.close()
    params = tmp_path / "params.yaml"
    prices = {"price_per_1k_input_tokens": 1.0, "price_per_1k_output_tokens": 10.0, "budget": 10}
    params.write_text(yaml.safe_dump({"teacher": {"store": spec, **prices}}))
    return tmp_path, params


def test_export_batches_has_time_run_status_tokens_and_cost(purse, capsys):
    tmp_path, params = purse
    out = tmp_path / "purse.csv"
    main(["--params", str(params), "export", "--batches", "--out", str(out)])
    assert "exported 6 batches of every teacher" in capsys.readouterr().out
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == BATCH_COLUMNS
    assert [r["status"] for r in rows] == ["answered", "answered", "rejected", "lost", "refused", "answered"]
    assert [r["counted"] for r in rows] == ["1", "1", "1", "1", "0", "1"]  # a refusal is given back
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["time"]) for r in rows)
    assert len({r["run"] for r in rows}) == 2 and rows[0]["teacher_name"] == NAME
    assert float(rows[0]["cost"]) == pytest.approx(100 / 1000 * 1.0 + 1 / 1000 * 10.0)
    assert float(rows[1]["cost"]) == pytest.approx((200 / 1000 + 10 / 1000) * 0.5)  # a Batch API job: half
    assert rows[1]["job"] == "batch_abc123" and rows[0]["job"] == ""
    assert float(rows[2]["cost"]) == pytest.approx(50 / 1000 + 20 / 1000)  # a rejected answer was paid
    assert rows[3]["reason"] == "ReadTimeout after the request left" and rows[3]["prompt_tokens"] == ""
    main(["--params", str(params), "export", "--batches", "--teacher", OTHER, "--out", str(tmp_path / "o.parquet")])
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "o.parquet").to_pydict()["teacher"] == [OTHER]


def test_summary_names_each_teacher_beside_its_hash(purse, capsys):
    _, params = purse
    main(["--params", str(params), "summary"])
    text = capsys.readouterr().out
    assert f"| {TEACHER} | {NAME} | 4 | 2 | 1 | 1 | 0 | 1 | 350 | 4 |" in text
    assert f"| {OTHER} | ONNX file models/teacher.onnx, output logits | 1 | 1 |" in text
    assert "spent in total: 5 of teacher.budget=10; remaining 5" in text
    assert f"estimated cost {0.1 + 0.01 + 0.105 + 0.07:.6f}" in text


def test_history_gives_one_line_per_run(purse, capsys):
    _, params = purse
    main(["--params", str(params), "history"])
    lines = capsys.readouterr().out.splitlines()
    runs = [line for line in lines if re.match(r"\| \d{4}-", line)]
    assert len(runs) == 2
    assert f"| {NAME} | 2 | 1 | 1 | 1 | 0 | 354 | {0.1 + 0.01 + 0.105 + 0.07:.6f} |" in runs[0]
    assert "| 1 | 0 | 0 | 0 | 0 | 0 |" in runs[1]
    assert lines[-1] == "2 runs; spent in total: 5"
    main(["--params", str(params), "history", "--last", "1"])
    assert len([line for line in capsys.readouterr().out.splitlines() if re.match(r"\| \d{4}-", line)]) == 1


def test_export_batches_refuses_an_unknown_suffix_in_one_line(purse, capsys):
    tmp_path, params = purse
    with pytest.raises(SystemExit) as exit_:
        main(["--params", str(params), "export", "--batches", "--out", str(tmp_path / "purse.txt")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"ckd ledger: error: --out: {tmp_path / 'purse.txt'} must end in .csv or .parquet with --batches"
    )
