"""The store's contract under both backends: the purse, answers by (teacher, input), dead runs, damage."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sqlalchemy as sa

from ckd.errors import CkdError
from ckd.store import open_store
from tests.conftest import PROJECT


def test_reserve_answer_refuse_and_the_purse(store_spec):
    store = open_store(store_spec)
    assert store.created_now and store.spent() == 0
    run = store.open_run("t1", "a teacher")
    first = store.reserve("t1", run, [1, 2, 3], ["a", "b", "c"], budget=5)
    assert first.rows == [0, 1, 2] and store.spent() == 3
    store.write_answers(first.batch, ["a", "b", "c"], np.eye(3, 4, dtype=np.float32))
    # answered and duplicate inputs are never counted again; the budget caps what is left
    second = store.reserve("t1", run, [1, 4, 4, 5, 6], ["a", "d", "d", "e", "f"], budget=5)
    assert second.rows == [1, 3] and store.spent() == 5
    assert store.reserve("t1", run, [7], ["g"], budget=5) is None
    # in flight: another run does not reserve these inputs, it waits
    other = store.open_run("t1", "a teacher")
    assert store.held_elsewhere("t1", ["d", "e", "g"], other) == {"d", "e"}
    assert store.reserve("t1", other, [4, 5], ["d", "e"], budget=50) is None
    store.mark_refused(second.batch, "HTTP 400")  # a definite refusal gives the count back
    assert store.spent() == 3
    third = store.reserve("t1", other, [4], ["d"], budget=5)
    store.mark_lost(third.batch, "timeout")  # unknown outcome: stays counted
    store.close_run(run)
    store.close_run(other)
    summary = store.summary("t1")
    assert (summary.spent, summary.answered, summary.lost, summary.refused) == (4, 3, 1, 2)
    np.testing.assert_array_equal(store.answers("t1", ["b", "z"])["b"], np.eye(3, 4, dtype=np.float32)[1])
    assert store.answers("t2", ["a"]) == {}  # two teachers never mix
    store.close()
    reopened = open_store(store_spec)
    assert not reopened.created_now and reopened.spent() == 4


def test_a_killed_runs_batch_becomes_lost_and_counted(store_spec):
    """A process reserves a batch and is SIGKILLed with it in flight: the next run sees it lost, still counted."""
    script = textwrap.dedent(f"""
        import sys, time
        from ckd.store import open_store
        store = open_store({store_spec!r})
        run = store.open_run("t1", "x")
        store.reserve("t1", run, [1, 2], ["a", "b"], budget=10)
        print("reserved", flush=True)
        time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "reserved"
    store = open_store(store_spec)
    assert store.held_elsewhere("t1", ["a"], "me") == {"a"}  # alive: wait for its answer
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert store.held_elsewhere("t1", ["a"], "me") == set()  # gone: nobody will answer it
    run = store.open_run("t1", "x")
    again = store.reserve("t1", run, [1, 2], ["a", "b"], budget=10)
    assert again.rows == [0, 1] and store.spent() == 4  # asked again, the lost pair stays counted
    assert store.summary("t1").lost == 2


def _tamper(store_spec, *statements):
    store = open_store(store_spec)
    run = store.open_run("t1", "x")
    for hashes in (["a", "b"], ["c"]):
        reservation = store.reserve("t1", run, [0] * len(hashes), hashes, budget=10)
        store.write_answers(reservation.batch, hashes, np.ones((len(hashes), 2), np.float32))
    store.close_run(run)
    with store.engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    store.close()


@pytest.mark.parametrize(
    "statement,words",
    [
        ("DELETE FROM ckd_answers WHERE input_hash = 'c'", "answers of batch 2 are missing"),
        ("DELETE FROM ckd_batch_items WHERE batch = 2", "batch 2 does not hold as many inputs as it counts"),
        ("UPDATE ckd_batches SET status = 'banana' WHERE batch = 1", "unknown status 'banana'"),
        (
            "UPDATE ckd_meta SET value = '99' WHERE key = 'schema_version'",
            "schema version '99', this ckd reads version 2",
        ),
        ("UPDATE ckd_batches SET status = 'refused' WHERE batch = 1", "its batches add up to 1 counted"),
        ("DELETE FROM ckd_purse", "its purse row is missing"),
        ("UPDATE ckd_answers SET classes = 3 WHERE input_hash = 'a'", "is malformed"),
    ],
)
def test_every_damage_is_one_line_naming_the_store(store_spec, statement, words):
    _tamper(store_spec, statement)
    with pytest.raises(CkdError) as error:
        open_store(store_spec)
    message = str(error.value)
    assert words in message and "\n" not in message
    assert "teacher.store" in message and ("new path" in message or "backup" in message)


def test_deleted_batch_rows_are_noticed(store_spec):
    _tamper(
        store_spec,
        "DELETE FROM ckd_answers WHERE batch = 2",
        "DELETE FROM ckd_batch_items WHERE batch = 2",
        "DELETE FROM ckd_batches WHERE batch = 2",
    )
    with pytest.raises(CkdError, match="purse says 3 in 2 .batch rows were deleted or edited"):
        open_store(store_spec)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_truncated_or_foreign_sqlite_file_is_one_line_through_the_stage(tmp_path, damage):
    spec = str(tmp_path / "store")
    _tamper(spec, "SELECT 1")
    path = tmp_path / "store" / "ckd-store.sqlite"
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"not a database at all" * 300)
    run = subprocess.run(
        [sys.executable, "-m", "ckd.ledger", "--store", spec, "summary"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in run.stderr


def test_a_password_in_the_store_url_is_refused():
    with pytest.raises(CkdError, match="teacher.store: holds a password; remove it and set PGPASSWORD"):
        open_store("postgresql://postgres:hunter2@127.0.0.1:5432/x")


def test_an_unreachable_server_is_one_line():
    with pytest.raises(CkdError, match=r"teacher.store postgresql://postgres@127.0.0.1:1/x: cannot be opened"):
        open_store("postgresql://postgres@127.0.0.1:1/x")


def test_relative_stores_resolve_to_the_main_repository(tmp_path):
    from ckd.store.sqlite import project_root, store_file

    main = tmp_path / "main"
    (main / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12").mkdir(parents=True)
    (main / ".git" / "worktrees" / "wt").mkdir(parents=True)
    (main / ".git" / "worktrees" / "wt" / "commondir").write_text("../..\n")
    worktree = tmp_path / "wt"
    (worktree / ".dvc").mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'wt'}\n")
    assert project_root(main / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12") == main  # queued experiment
    assert project_root(worktree) == main  # a git worktree
    assert store_file("teacher_outputs", worktree) == main / "teacher_outputs" / "ckd-store.sqlite"
    assert store_file(str(tmp_path / "s.sqlite"), worktree) == tmp_path / "s.sqlite"
