"""Issue 18: the store's promises under damage. Each case is what a hostile user did to a real store (SQLite
file, PostgreSQL database): the run refuses it in one line naming the store and the row, `ledger check`
finds exactly the same, and only an absent file is a fresh start."""

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import sqlalchemy as sa

import ckd.store.base as store_base
from ckd.errors import CkdError
from ckd.query import run_query
from ckd.store import open_store
from ckd.teachers.base import OutcomeUnknown
from tests.conftest import PROJECT


def ledger(*argv, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "ckd.ledger", *argv],
        cwd=cwd or PROJECT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )


def answered_store(spec):
    """A store with two answered batches of teacher t1: inputs a, b (batch 1) and c (batch 2)."""
    store = open_store(spec)
    run = store.open_run("t1", "x")
    for hashes in (["a", "b"], ["c"]):
        reservation = store.reserve("t1", run, [0] * len(hashes), hashes, budget=10)
        store.write_answers(reservation.batch, hashes, np.arange(2 * len(hashes), dtype=np.float32).reshape(-1, 2))
    store.close_run(run)
    return store


def execute(store, *statements):
    with store.engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    store.close()


# -- a store that is not a store is damage; only an absent file is a fresh start ----------------------------------


def _foreign_sqlite(path):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (name TEXT)")
    connection.commit()
    connection.close()


def _tableless_sqlite(path):
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 7")
    connection.commit()
    connection.close()


@pytest.mark.parametrize(
    "make",
    [lambda p: p.write_bytes(b""), _foreign_sqlite, _tableless_sqlite],
    ids=["zero-bytes", "foreign-database", "database-without-tables"],
)
def test_a_file_that_is_not_a_store_is_damage_not_a_fresh_start(tmp_path, make):
    path = tmp_path / "ckd-store.sqlite"
    make(path)
    with pytest.raises(CkdError) as error:
        open_store(str(path))
    message = str(error.value)
    assert str(path) in message and "damaged" in message and "\n" not in message
    assert ("0 bytes" in message) == (make is not _foreign_sqlite and make is not _tableless_sqlite)
    checked = ledger("check", "--store", str(path))
    assert checked.returncode == 2 and checked.stderr.strip() == f"ckd ledger: error: {message}"


def test_only_an_absent_file_is_a_fresh_start(tmp_path):
    store = open_store(str(tmp_path / "new.sqlite"))
    assert store.created_now
    store.close()
    assert not open_store(str(tmp_path / "new.sqlite")).created_now


# -- answers carry a checksum: edited, cut or zeroed answers are damage, found by the run and by `ledger check` ----


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ckd_answers SET scores = {zeros} WHERE input_hash = 'b'",  # the answer replaced by zeros
        "UPDATE ckd_answers SET classes = 1, scores = {cut} WHERE input_hash = 'b'",  # fewer classes, cut scores
    ],
    ids=["zeroed", "cut"],
)
def test_an_edited_answer_is_damage_for_the_run_and_for_ledger_check(store_spec, statement, tmp_path):
    store = answered_store(store_spec)
    postgres = store.scheme == "postgresql"
    zeros = "'\\x0000000000000000'::bytea" if postgres else "zeroblob(8)"
    cut = "'\\x00000000'::bytea" if postgres else "zeroblob(4)"
    execute(store, statement.format(zeros=zeros, cut=cut))
    with pytest.raises(CkdError) as error:
        open_store(store_spec)
    message = str(error.value)
    assert "the stored answer of input b" in message and "batch 1" in message and "checksum" in message
    assert "\n" not in message
    checked = ledger("check", "--store", store_spec, cwd=tmp_path)
    assert checked.returncode == 2 and checked.stderr.strip() == f"ckd ledger: error: {message}"


def test_ledger_check_says_consistent_only_of_a_consistent_store(store_spec, tmp_path):
    answered_store(store_spec).close()
    checked = ledger("check", "--store", store_spec, cwd=tmp_path)
    assert checked.returncode == 0 and "consistent (3 spent in total)" in checked.stdout, checked.stderr


def test_the_advised_ledger_check_command_runs(store_spec, tmp_path):
    """The damage line advises `python -m ckd.ledger check --store X`: followed as written, it runs (argparse
    takes it) and reports the same damage."""
    execute(answered_store(store_spec), "DELETE FROM ckd_batch_items WHERE batch = 2")
    with pytest.raises(CkdError) as error:
        open_store(store_spec)
    advice = str(error.value).split("`")[1]
    assert advice.startswith("python -m ckd.ledger check --store ")
    checked = subprocess.run(
        [sys.executable, *shlex.split(advice)[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert checked.returncode == 2 and "usage:" not in checked.stderr
    assert checked.stderr.strip() == f"ckd ledger: error: {error.value}"


# -- a batch whose run row is gone -------------------------------------------------------------------------------


def test_a_batch_whose_run_row_is_gone_is_lost_after_the_heartbeat_window(store_spec, monkeypatch):
    """A live run holds a batch in flight and its `ckd_runs` row is deleted: another run waits for it no longer
    than the heartbeat window, then the batch is lost (still counted); a later open names the missing row."""
    script = textwrap.dedent(f"""
        import time
        import ckd.store.base
        from ckd.store import open_store
        ckd.store.base.HEARTBEAT_S = 0.1  # alive beyond doubt within the shortened window below
        store = open_store({store_spec!r})
        run = store.open_run("t1", "x")
        store.reserve("t1", run, [1, 2], ["a", "b"], budget=10)
        print(run, flush=True)
        time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        owner = holder.stdout.readline().strip()
        store = open_store(store_spec)
        me = store.open_run("t1", "x")
        monkeypatch.setattr(store_base, "LEASE_S", 1.0)
        time.sleep(1.5)
        # the control: alive (its heartbeat every 0.1 s), with its row, its batch older than the window: waited for
        assert store.held_elsewhere("t1", ["a", "b"], me) == {"a", "b"}
        with store.engine.begin() as connection:
            connection.execute(sa.text(f"DELETE FROM ckd_runs WHERE run = '{owner}'"))
        assert store.held_elsewhere("t1", ["a", "b"], me) == set()  # its row gone: not waited on for ever
        again = store.reserve("t1", me, [1, 2], ["a", "b"], budget=10)
        assert again.rows == [0, 1] and store.summary("t1").lost == 2 and store.spent() == 4
        store.close_run(me)
        store.close()
        with pytest.raises(CkdError, match=f"batch 1 names run {owner}, which has no row in ckd_runs"):
            open_store(store_spec)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


# -- the run's figures and lines ---------------------------------------------------------------------------------


class Scores:
    """A teacher answering ones, `classes` of them (tests only)."""

    identity, description, concurrency, classes = "t1", "a teacher", 1, 3

    def check_fits(self, shape, classes):
        pass

    def predict(self, x):
        return np.ones((len(x), self.classes), np.float32)


def test_another_live_runs_batch_in_flight_is_not_counted_as_lost(store_spec):
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    from ckd.query import input_hashes

    hashes = input_hashes(x)
    script = textwrap.dedent(f"""
        import time
        from ckd.store import open_store
        store = open_store({store_spec!r})
        run = store.open_run("t1", "x")
        store.reserve("t1", run, [0, 1], {hashes[:2]!r}, budget=100)
        print("reserved", flush=True)
        time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "reserved"
        result = run_query(Scores(), np.arange(2, 10), x[2:], 3, budget=100, store=store_spec, progress=False)
        assert len(result.ids) == 8 and result.teacher_lost == 0 and result.calls_spent_total == 10
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_ledger_summary_of_a_path_with_no_store_creates_nothing(tmp_path):
    path = tmp_path / "typo" / "ckd-store.sqlite"
    summary = ledger("summary", "--store", str(path), cwd=tmp_path)
    assert summary.returncode == 2 and len(summary.stderr.strip().splitlines()) == 1
    assert str(path) in summary.stderr and "no store" in summary.stderr
    assert not path.exists() and not path.parent.exists()


def test_imported_answers_beyond_the_budget_are_said_to_be_imported(tmp_path):
    from ckd.data.arrays import write_arrays

    export = tmp_path / "answers.npz"
    hashes = np.asarray([f"{i:064x}" for i in range(100)])
    write_arrays(export, teacher=np.asarray("t1"), hashes=hashes, scores=np.ones((100, 3), np.float32))
    store = str(tmp_path / "store.sqlite")
    assert ledger("--store", store, "import", "--from", str(export), cwd=tmp_path).returncode == 0
    summary = ledger("summary", "--store", store, "--budget", "50", cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert "earlier, larger budget" not in summary.stdout
    assert "100 of them imported" in summary.stdout


def test_a_full_disk_is_not_called_damage(tmp_path):
    spec = str(tmp_path / "store.sqlite")
    store = open_store(spec)
    run = store.open_run("t1", "x")
    with store.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
    store.engine.dispose()

    @sa.event.listens_for(store.engine, "connect")
    def full(dbapi_connection, _record):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    hashes = [f"{i:064x}" for i in range(2000)]
    with pytest.raises(CkdError) as error:
        store.reserve("t1", run, list(range(2000)), hashes, budget=5000)
    message = str(error.value)
    assert "full" in message and "damaged" not in message and "backup" not in message
    assert spec in message and "\n" not in message


class DiesAfterAnswering(Scores):
    """Answers, then PostgreSQL goes away (the proxy in front of it stops) before the answer is stored."""

    def __init__(self, proxy):
        self.proxy = proxy

    def predict(self, x):
        self.proxy.stop()
        return super().predict(x)


def test_the_spill_file_is_named_in_the_last_line_when_postgresql_goes_away(pg_store_url, tmp_path, monkeypatch):
    from tests.helpers.tcp_proxy import TcpProxy

    monkeypatch.setenv("HOME", str(tmp_path))  # the spill folder of a PostgreSQL store: ~/.cache/ckd/spill
    monkeypatch.setattr("ckd.query.WRITE_ATTEMPTS", 1)
    url = sa.make_url(pg_store_url)
    proxy = TcpProxy(url.host, url.port)
    through = url.set(port=proxy.port).render_as_string(hide_password=False)
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    with pytest.raises(CkdError) as error:
        run_query(DiesAfterAnswering(proxy), np.arange(4), x, 3, budget=10, store=through, progress=False)
    spills = sorted((tmp_path / ".cache" / "ckd" / "spill").glob("spill-*.npz"))
    assert len(spills) == 1
    last = str(error.value).splitlines()[-1]
    assert str(spills[0]) in last and "next run imports" in last
    again = run_query(Scores(), np.arange(4), x, 3, budget=10, store=pg_store_url, progress=False)
    assert again.calls_this_run == 0 and len(again.ids) == 4 and not spills[0].exists()


def test_outcome_unknown_is_still_lost(store_spec):
    """A control: a batch with no answer stays counted as lost (the contract this issue keeps)."""

    class Unknown(Scores):
        def predict(self, x):
            raise OutcomeUnknown("timeout")

    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    result = run_query(Unknown(), np.arange(4), x, 3, budget=4, store=store_spec, progress=False)
    assert result.teacher_lost == 4 and result.calls_spent_total == 4 and result.unanswered == 4


def test_a_version_1_store_is_migrated_with_its_answers_checksummed(store_spec):
    """A store written before checksums (schema 1, no checksum column) opens: each answer gains its checksum,
    and an answer edited afterwards is noticed."""
    store = answered_store(store_spec)
    execute(
        store,
        "ALTER TABLE ckd_answers DROP COLUMN checksum",
        "UPDATE ckd_meta SET value = '1' WHERE key = 'schema_version'",
    )
    migrated = open_store(store_spec)
    assert migrated.get_meta("schema_version") == "2" and migrated.spent() == 3
    np.testing.assert_array_equal(migrated.answers("t1", ["b"])["b"], [2, 3])
    postgres = migrated.scheme == "postgresql"
    zeros = "decode(repeat('00', 8), 'hex')" if postgres else "zeroblob(8)"
    execute(migrated, f"UPDATE ckd_answers SET scores = {zeros} WHERE input_hash = 'b'")
    with pytest.raises(CkdError, match="does not match its checksum"):
        open_store(store_spec)


def test_a_version_1_store_without_the_added_columns_is_migrated_too(store_spec):
    """A version 1 store written before both the checksums and `ADDED_COLUMNS` opens: schema 2, its answers
    checksummed, the columns added once (regression: they were added twice, "duplicate column name")."""
    store = answered_store(store_spec)
    execute(
        store,
        "ALTER TABLE ckd_answers DROP COLUMN checksum",
        *(f"ALTER TABLE ckd_batches DROP COLUMN {name}" for name in store_base.ADDED_COLUMNS["ckd_batches"]),
        "UPDATE ckd_meta SET value = '1' WHERE key = 'schema_version'",
    )
    migrated = open_store(store_spec)
    try:
        assert migrated.get_meta("schema_version") == "2" and migrated.spent() == 3
        with migrated.engine.connect() as c:
            columns = {column["name"] for column in sa.inspect(c).get_columns("ckd_batches")}
            checksums = c.execute(sa.text("SELECT input_hash, checksum FROM ckd_answers ORDER BY input_hash")).all()
        assert {"prompt_tokens", "completion_tokens", "remote"} <= columns
        assert [h for h, _ in checksums] == ["a", "b", "c"] and all(checksum for _, checksum in checksums)
        np.testing.assert_array_equal(migrated.answers("t1", ["b"])["b"], [2, 3])
    finally:
        migrated.close()
    open_store(store_spec).close()  # and it opens again as a version 2 store


@pytest.mark.parametrize("damage", ["cut", "overwritten"])
def test_a_cut_or_overwritten_file_is_called_damage_with_the_check_command(tmp_path, damage):
    spec = str(tmp_path / "s.sqlite")
    answered_store(spec).close()
    for extra in ("-wal", "-shm"):
        (tmp_path / f"s.sqlite{extra}").unlink(missing_ok=True)
    data = (tmp_path / "s.sqlite").read_bytes()
    (tmp_path / "s.sqlite").write_bytes(data[: len(data) // 3] if damage == "cut" else b"not a database" * 300)
    with pytest.raises(CkdError) as error:
        open_store(spec)
    message = str(error.value)
    assert "the store is damaged" in message and f"python -m ckd.ledger check --store {spec}" in message
    checked = ledger("check", "--store", spec, cwd=tmp_path)
    assert checked.returncode == 2 and checked.stderr.strip() == f"ckd ledger: error: {message}"


def test_a_fresh_start_is_said_at_the_start_and_at_the_end_of_the_run(tmp_path, capsys, monkeypatch, caplog):
    import logging

    import yaml

    from tests.helpers import copy_project, linear_onnx_teacher
    from tests.helpers.stages import run_stage_commands

    root = copy_project(tmp_path / "project", ("dvc.yaml", "ckd"))
    linear_onnx_teacher(root / "teacher.onnx", input_shape=[1, 8, 8])
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["teacher"].update(kind="onnx", model="teacher.onnx", store=str(root / "new-store"), budget=20)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with caplog.at_level(logging.INFO):
        assert run_stage_commands(root, capsys, monkeypatch, until="query") is None
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("ckd.")]
    fresh = [line for line in lines if line.startswith("FRESH START: teacher.store")]
    assert len(fresh) == 2 and lines[-1] == fresh[0] and str(root / "new-store") in fresh[0]
    caplog.clear()
    with caplog.at_level(logging.INFO):  # the second run: the store exists, no fresh start
        assert run_stage_commands(root, capsys, monkeypatch, until="query") is None
    assert not [r for r in caplog.records if "FRESH START" in r.getMessage()]


def test_a_run_waiting_on_a_batch_whose_run_row_is_deleted_finishes(store_spec, monkeypatch):
    """The issue's case end to end: a run waits for inputs another live run has in flight; that run's row is
    deleted; the waiting run finishes after the heartbeat window (shortened here), the batch lost and asked again."""
    import threading

    from ckd.query import input_hashes

    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    hashes = input_hashes(x)
    script = textwrap.dedent(f"""
        import time
        import ckd.store.base
        from ckd.store import open_store
        ckd.store.base.HEARTBEAT_S = 0.1
        store = open_store({store_spec!r})
        run = store.open_run("t1", "x")
        store.reserve("t1", run, [0, 1], {hashes[:2]!r}, budget=100)
        print(run, flush=True)
        time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        owner = holder.stdout.readline().strip()
        monkeypatch.setattr(store_base, "LEASE_S", 1.0)  # the holder beats every 0.1 s: alive throughout
        results = []
        waiting = threading.Thread(
            target=lambda: results.append(run_query(Scores(), np.arange(4), x, 3, 100, store_spec, progress=False)),
            daemon=True,
        )
        waiting.start()
        waiting.join(3)
        assert waiting.is_alive() and not results  # the holder is alive, with its row: the run waits
        store = open_store(store_spec)
        with store.engine.begin() as connection:
            connection.execute(sa.text(f"DELETE FROM ckd_runs WHERE run = '{owner}'"))
        store.close()
        waiting.join(120)
        assert not waiting.is_alive() and len(results) == 1
        result = results[0]
        assert len(result.ids) == 4 and result.teacher_lost == 2 and result.calls_spent_total == 6
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
