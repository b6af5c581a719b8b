import json

import pytest

from ckd.budget import BudgetLedger
from ckd.errors import BudgetExhausted, CkdError


def test_counts_reserved_minus_refused(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with BudgetLedger(path, "t1") as ledger:
        a = ledger.reserve([1, 2, 3], ["h1", "h2", "h3"], budget=5)
        ledger.mark_answered(a, "batches/a.npz")
        b = ledger.reserve([4, 5], ["h4", "h5"], budget=5)
        assert ledger.counted == 5
        with pytest.raises(BudgetExhausted, match="teacher.budget=5"):
            ledger.reserve([6], ["h6"], budget=5)
        ledger.mark_refused(b, "429")  # a definite refusal gives the count back
        assert ledger.counted == 3
        c = ledger.reserve([6], ["h6"], budget=5)  # now fits
        assert c == 3
    # replayed from disk: the last batch never closed, so it is lost and stays counted
    with BudgetLedger(path, "t1") as ledger:
        assert ledger.counted == 4
        assert [r.batch for r in ledger.in_flight()] == [3]
        assert ledger.state.count("answered") == 3


def test_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with BudgetLedger(path, "t1") as ledger:
        ledger.reserve([1], ["h1"], budget=3)
    with open(path, "a") as handle:
        handle.write('{"event":"reserve","batch":2,"ids":[2')  # a crash mid-write: never fsynced, never sent
    with BudgetLedger(path, "t1") as ledger:
        assert ledger.counted == 1
        ledger.reserve([2], ["h2"], budget=3)
    lines = path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_other_teacher_and_concurrent_use_are_refused(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with BudgetLedger(path, "t1"):
        with pytest.raises(CkdError, match="another process"):
            BudgetLedger(path, "t1").__enter__()
    with pytest.raises(CkdError, match="belongs to teacher t1"):
        with BudgetLedger(path, "t2"):
            pass
