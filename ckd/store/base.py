"""The store's one interface, written once in SQLAlchemy Core; a backend module adds only its engine,
its lock on the purse row and where it lives (`ckd.store.sqlite`, `ckd.store.postgresql`)."""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ckd.errors import CkdError
from ckd.registry import Registry

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: every answer carries its checksum (a store of version 1 is migrated when opened)
STATUSES = ("in_flight", "answered", "rejected", "refused", "lost")
HEARTBEAT_S = 5.0
LEASE_S = 60.0  # a run silent this long (on another machine) is taken for dead: its in-flight batches are lost
HOST = socket.gethostname()
IMPORT_RUN = "import"  # the run of batches recorded by an import (paid elsewhere): it has no row in ckd_runs
DISK_FULL = ("disk is full", "No space left", "DiskFull")  # in a database error's first line
UNREACHABLE = ("connect", "could not", "Connection refused")

metadata = sa.MetaData()
meta_table = sa.Table(
    "ckd_meta",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
# The purse: one row, locked by every change of what is counted. `spent` and `batches` repeat what the
# batches table says, so a deleted or edited batch row is noticed instead of silently freeing budget.
purse_table = sa.Table(
    "ckd_purse",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("spent", sa.BigInteger, nullable=False),
    sa.Column("batches", sa.BigInteger, nullable=False),
)
teachers_table = sa.Table(
    "ckd_teachers",
    metadata,
    sa.Column("teacher", sa.String(300), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("first_seen", sa.Float),
)
runs_table = sa.Table(
    "ckd_runs",
    metadata,
    sa.Column("run", sa.String(40), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
    sa.Column("finished", sa.Boolean, nullable=False, default=False),
)
batches_table = sa.Table(
    "ckd_batches",
    metadata,
    sa.Column("batch", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("teacher", sa.String(300), nullable=False, index=True),
    sa.Column("run", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("closed", sa.Float),
    sa.Column("reason", sa.Text),
    # Tokens the batch's answer cost, from the teacher's `usage` (an LLM teacher: one input per batch);
    # NULL where the teacher reports none, or the batch was recorded before these columns existed.
    sa.Column("prompt_tokens", sa.BigInteger),
    sa.Column("completion_tokens", sa.BigInteger),
    # The provider's id of the asynchronous job carrying this batch (OpenAI Batch API: its input file's, then its
    # batch's), so a run that died resumes polling it instead of paying again; NULL for a synchronous call.
    sa.Column("remote", sa.String(200)),
)
TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens")
# Columns added after the store's first release: an older store gains them when opened, nullable (NULL: no figure).
ADDED_COLUMNS = {"ckd_batches": (*TOKEN_COLUMNS, "remote")}
REMOTE_DONE = "remote_done:"  # ckd_meta key prefix: an asynchronous job whose results are all recorded
items_table = sa.Table(
    "ckd_batch_items",
    metadata,
    sa.Column("batch", sa.Integer, sa.ForeignKey("ckd_batches.batch"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("sample_id", sa.BigInteger, nullable=False),
    sa.Column("input_hash", sa.String(64), nullable=False, index=True),
)
answers_table = sa.Table(
    "ckd_answers",
    metadata,
    sa.Column("teacher", sa.String(300), primary_key=True),
    sa.Column("input_hash", sa.String(64), primary_key=True),
    sa.Column("classes", sa.Integer, nullable=False),
    sa.Column("scores", sa.LargeBinary, nullable=False),  # float32, little-endian
    sa.Column("batch", sa.Integer, nullable=False),
    # SHA-256 of (teacher, input, classes, scores): an answer edited, cut or zeroed in place is noticed
    sa.Column("checksum", sa.String(64)),
)
quarantine_table = sa.Table(
    "ckd_quarantine",
    metadata,
    sa.Column("batch", sa.Integer, primary_key=True),
    sa.Column("problem", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class Reservation:
    batch: int
    rows: list[int]  # positions, in the caller's candidate list, that this batch carries


@dataclass(frozen=True)
class TeacherSummary:
    teacher: str
    description: str
    spent: int  # counted: answered + rejected + lost + in flight
    answered: int
    rejected: int
    lost: int
    in_flight: int
    refused: int
    prompt_tokens: int = 0  # tokens spent on its batches (answered or rejected), from the teacher's `usage`
    completion_tokens: int = 0


def _first_new(hashes: list[str], known: set[str]) -> list[int]:
    """Positions of the first occurrence of each hash not in `known`, in order (a duplicate is sent once)."""
    first: dict[str, int] = {}
    return [
        i for i, input_hash in enumerate(hashes) if input_hash not in known and first.setdefault(input_hash, i) == i
    ]


def _counted(*where: Any) -> sa.Select[Any]:
    """How many inputs the batches `where` picks count (all but refused ones)."""
    b = batches_table
    return sa.select(sa.func.coalesce(sa.func.sum(b.c.n), 0)).where(b.c.status != "refused", *where)


def _in_flight(teacher: str, *columns: Any) -> sa.Select[Any]:
    """`columns` of the items, and their batches, that `teacher` has in flight."""
    b, i = batches_table, items_table
    return sa.select(*columns).join(b, b.c.batch == i.c.batch).where(b.c.teacher == teacher, b.c.status == "in_flight")


def _chunks(hashes: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """The distinct `hashes`, sorted, in lists short enough for one IN clause."""
    wanted = sorted(set(hashes))
    return (wanted[start : start + size] for start in range(0, len(wanted), size))


def answer_checksum(teacher: str, input_hash: str, classes: int, blob: bytes) -> str:
    """checksum = SHA-256(teacher NUL input_hash NUL classes NUL scores' float32 bytes)."""
    digest = hashlib.sha256(f"{teacher}\0{input_hash}\0{int(classes)}\0".encode())
    digest.update(bytes(blob))
    return digest.hexdigest()


def _answer_row(teacher: str, input_hash: str, scores: np.ndarray, batch: int) -> dict[str, Any]:
    blob = np.ascontiguousarray(scores, dtype="<f4").tobytes()
    return {
        "teacher": teacher,
        "input_hash": input_hash,
        "classes": int(len(scores)),
        "scores": blob,
        "batch": batch,
        "checksum": answer_checksum(teacher, input_hash, len(scores), blob),
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: it will never answer
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Store:
    """A store of paid answers with its purse. Backends subclass this and set `scheme`."""

    scheme = ""

    def __init__(self, location: str, url: sa.URL | str, create: bool = True, **engine_args: Any) -> None:
        """`create`: an absent store (`absent()`) is made, a fresh start; else it is one line, nothing made."""
        self.location, self.create = location, create
        self.engine = sa.create_engine(url, **engine_args)
        self.spill_dirs: list[Path] = []
        self.store_id = ""
        self.created_now = False
        self._heartbeats: dict[str, threading.Event] = {}
        with self._guarded("cannot be opened"):
            self._open()

    def absent(self, connection: sa.Connection) -> str | None:
        """Why a place without the store's tables is damage (None: a fresh start; a server database may hold others)."""
        return None

    # -- what a backend provides -------------------------------------------------------------
    def lock_purse(self, connection: sa.Connection) -> dict[str, Any]:
        """Lock the purse row for the rest of the transaction; return it."""
        p = purse_table
        row = connection.execute(sa.select(p).where(p.c.id == 1).with_for_update()).mappings().first()
        if row is None:
            raise self.corrupt("its purse row is missing")
        return dict(row)

    def init_lock(self, connection: sa.Connection) -> None:
        """Serialise the creation of the schema between processes (a backend may need more than a transaction)."""

    # -- errors --------------------------------------------------------------------------------
    def corrupt(self, what: str) -> CkdError:
        return CkdError(
            f"teacher.store {self.location}: {what}; the store is damaged: restore it from a backup "
            f"(or inspect it with `python -m ckd.ledger check --store {shlex.quote(self.location)}`), or point "
            "teacher.store at a new path for an explicit fresh start"
        )

    @contextmanager
    def _guarded(self, what: str) -> Iterator[None]:
        """A database error inside becomes one line: the store, `what` failed, why and what to do."""
        try:
            yield
        except SQLAlchemyError as error:
            orig = getattr(error, "orig", None)
            cause = str(orig or error).splitlines()[0]
            if self.scheme == "sqlite" and ("malformed" in cause or "not a database" in cause):  # cut, overwritten
                raise self.corrupt(f"{what}: {cause}") from None
            if type(orig).__name__ == "DiskFull" or any(words in cause for words in DISK_FULL):
                why = f": the disk is full ({cause}); free some space and run again (what the store holds is kept)"
            elif isinstance(error, sa.exc.OperationalError) and any(words in cause for words in UNREACHABLE):
                why = f": {cause} (is the database server running and reachable?)"
            else:
                why = (
                    f" ({cause}); if the store is damaged, restore it from a backup or point teacher.store at a new "
                    "path for an explicit fresh start"
                )
            raise CkdError(f"teacher.store {self.location}: {what}{why}") from None

    @contextmanager
    def _transaction(self, what: str, write: bool = True) -> Iterator[sa.Connection]:
        """A connection (a transaction when `write`) whose database errors are `_guarded` ones."""
        with self._guarded(what):
            opened = self.engine.begin() if write else self.engine.connect()
            with opened as c:
                yield c

    # -- schema and checks ---------------------------------------------------------------------
    def _open(self) -> None:
        with self.engine.begin() as connection:
            self.init_lock(connection)
            inspector = sa.inspect(connection)
            present = {t for t in metadata.tables if inspector.has_table(t)}
            if not present:
                damage = self.absent(connection)
                if damage is not None:
                    raise self.corrupt(f"it is no ckd store ({damage}); only an absent file is a fresh start")
                if not self.create:
                    raise CkdError(f"teacher.store {self.location}: no store there (nothing was created)")
                metadata.create_all(connection)
                self.store_id = uuid.uuid4().hex
                meta = dict(schema_version=str(SCHEMA_VERSION), store_id=self.store_id, created=f"{time.time():.3f}")
                connection.execute(sa.insert(meta_table), [{"key": k, "value": v} for k, v in meta.items()])
                connection.execute(sa.insert(purse_table).values(id=1, spent=0, batches=0))
                self.created_now = True
                return
            if "ckd_meta" not in present:
                raise self.corrupt("it has tables but no ckd_meta table (not a ckd store, or a damaged one)")
            meta = dict(connection.execute(sa.select(meta_table.c.key, meta_table.c.value)).all())
            missing = sorted(set(metadata.tables) - present)
            if meta.get("schema_version") == "1" and not missing:  # its added columns come with the others below
                self._add_checksums(connection)
                meta["schema_version"] = str(SCHEMA_VERSION)
            if meta.get("schema_version") != str(SCHEMA_VERSION):
                raise CkdError(
                    f"teacher.store {self.location}: schema version {meta.get('schema_version')!r}, this "
                    f"ckd reads version {SCHEMA_VERSION}; use the ckd that wrote it, or point teacher.store "
                    "at a new path for an explicit fresh start"
                )
            if missing:
                raise self.corrupt(f"tables {', '.join(missing)} are missing")
            self._add_columns(connection, inspector)
            self.store_id = meta.get("store_id", "")
        self.check()

    def _add_columns(self, connection: sa.Connection, inspector: Any) -> None:
        """Add `ADDED_COLUMNS` a store lacks, nullable (under `init_lock`: two runs opening it add them once)."""
        for table_name, names in ADDED_COLUMNS.items():
            have = {column["name"] for column in inspector.get_columns(table_name)}
            for name in (name for name in names if name not in have):
                kind = metadata.tables[table_name].c[name].type.compile(dialect=connection.dialect)
                connection.execute(sa.text(f"ALTER TABLE {table_name} ADD COLUMN {name} {kind}"))
                log.info("teacher.store %s: added column %s.%s", self.location, table_name, name)

    def _add_checksums(self, c: sa.Connection) -> None:
        """Version 1 to 2: each stored answer gains its checksum, computed from it as it is now."""
        a, m = answers_table, meta_table
        if "checksum" not in {column["name"] for column in sa.inspect(c).get_columns("ckd_answers")}:
            c.execute(sa.text("ALTER TABLE ckd_answers ADD COLUMN checksum VARCHAR(64)"))
        rows = c.execute(sa.select(a.c.teacher, a.c.input_hash, a.c.classes, a.c.scores)).all()
        for teacher, input_hash, classes, blob in rows:
            checksum = answer_checksum(teacher, input_hash, classes, blob)
            c.execute(
                sa.update(a).where(a.c.teacher == teacher, a.c.input_hash == input_hash).values(checksum=checksum)
            )
        c.execute(sa.update(m).where(m.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
        log.info("teacher.store %s: schema version 1 -> %d (%d answers checksummed)", self.location, 2, len(rows))

    def _verify(
        self, teacher: str, input_hash: str, classes: int, blob: bytes, checksum: str | None, batch: int | None
    ) -> None:
        """One stored answer as the run reads it and as `check` reads every one: the same rule, the same line."""
        malformed = classes < 1 or len(bytes(blob)) != 4 * classes
        if malformed or checksum != answer_checksum(teacher, input_hash, classes, blob):
            raise self.corrupt(
                f"the stored answer of input {input_hash[:12]} (teacher {teacher}, batch {batch}) does not match "
                "its checksum (edited, cut or zeroed)"
            )

    def check(self) -> None:
        """Every consistency rule the store must keep; a damaged store stops here, never resets."""
        b, i, a, r = batches_table, items_table, answers_table, runs_table
        # Under the purse lock: no reservation or refund commits between the reads below, so a run that is
        # reserving right now is never mistaken for damage.
        with self.engine.begin() as c:

            def rule(query: sa.Select[Any], problem: str) -> None:
                """The first row `query` finds is damage: `problem`, formatted with that row."""
                row = c.execute(query).first()
                if row is not None:
                    raise self.corrupt(problem.format(*row))

            purse = self.lock_purse(c)
            rule(
                sa.select(b.c.batch, b.c.status).where(b.c.status.not_in(STATUSES)),
                "batch {} has an unknown status {!r}",
            )
            spent = c.execute(_counted()).scalar_one()
            count = c.execute(sa.select(sa.func.count()).select_from(b)).scalar_one()
            if int(spent) != int(purse["spent"]) or int(count) != int(purse["batches"]):
                raise self.corrupt(
                    f"its batches add up to {spent} counted in {count} batches, its purse says "
                    f"{purse['spent']} in {purse['batches']} (batch rows were deleted or edited)"
                )
            items = sa.select(i.c.batch, sa.func.count().label("k")).group_by(i.c.batch).subquery()
            rule(
                sa.select(b.c.batch)
                .outerjoin(items, items.c.batch == b.c.batch)
                .where(sa.func.coalesce(items.c.k, 0) != b.c.n),
                "batch {} does not hold as many inputs as it counts",
            )
            rule(
                sa.select(b.c.batch)
                .join(i, i.c.batch == b.c.batch)
                .outerjoin(a, sa.and_(a.c.teacher == b.c.teacher, a.c.input_hash == i.c.input_hash))
                .where(b.c.status == "answered", a.c.input_hash.is_(None)),
                "answers of batch {} are missing",
            )
            rule(
                sa.select(a.c.input_hash).where(sa.or_(a.c.classes < 1, sa.func.length(a.c.scores) != 4 * a.c.classes)),
                "the stored answer for input {:.12} is malformed",
            )
            rule(
                sa.select(b.c.batch, b.c.run)
                .outerjoin(r, r.c.run == b.c.run)
                .where(b.c.run != IMPORT_RUN, r.c.run.is_(None))
                .order_by(b.c.batch),
                "batch {} names run {}, which has no row in ckd_runs (run rows were deleted)",
            )
            stored = sa.select(a.c.teacher, a.c.input_hash, a.c.classes, a.c.scores, a.c.checksum, a.c.batch)
            for row in c.execution_options(yield_per=1000).execute(stored.order_by(a.c.batch, a.c.input_hash)):
                self._verify(*row)

    # -- runs ------------------------------------------------------------------------------------
    def open_run(self, teacher: str, description: str) -> str:
        """Register a run (its heartbeat tells other runs it is alive) and the teacher it asks."""
        run, now = uuid.uuid4().hex, time.time()
        with self._transaction("cannot register this run") as c:
            row = dict(run=run, host=HOST, pid=os.getpid(), started=now, heartbeat=now, finished=False)
            c.execute(sa.insert(runs_table).values(**row))
            self._add_teacher(c, teacher, description)
        self._heartbeats[run] = stop = threading.Event()
        threading.Thread(target=self._beat, args=(run, stop), daemon=True, name="store-heartbeat").start()
        return run

    def _beat(self, run: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                with self.engine.begin() as c:
                    c.execute(sa.update(runs_table).where(runs_table.c.run == run).values(heartbeat=time.time()))
            except SQLAlchemyError as error:  # a busy store: the next beat tries again, the lease is long
                log.debug("heartbeat of run %s failed: %s", run, error)

    def close_run(self, run: str) -> None:
        self._heartbeats.pop(run, threading.Event()).set()  # its heartbeat stops
        try:
            with self._transaction("cannot close this run") as c:
                c.execute(sa.update(runs_table).where(runs_table.c.run == run).values(finished=True))
                c.execute(
                    sa.update(batches_table)
                    .where(batches_table.c.run == run, batches_table.c.status == "in_flight")
                    .values(status="lost", closed=time.time(), reason="the run ended with no answer")
                )
        except CkdError as error:  # its batches become lost anyway once this process is gone
            log.warning("%s", error)

    def _dead_runs(self, c: sa.Connection, runs: dict[str, float]) -> set[str]:
        """Of `runs` ({run: when its oldest batch in flight was reserved}), those gone: finished, a dead process
        here, silent for LEASE_S; a run whose row is gone (deleted) once its batch is older than LEASE_S."""
        rows = c.execute(sa.select(runs_table).where(runs_table.c.run.in_(list(runs)))).mappings().all()
        now = time.time()
        dead = {
            r["run"]
            for r in rows
            if r["finished"] or (r["host"] == HOST and not _pid_alive(r["pid"])) or now - r["heartbeat"] > LEASE_S
        }
        known = {r["run"] for r in rows}
        return dead | {run for run, since in runs.items() if run not in known and now - since > LEASE_S}

    def _settle_dead(self, c: sa.Connection, teacher: str) -> None:
        """In-flight batches whose run is gone are lost: their outcome is unknown, they stay counted."""
        b = batches_table
        in_flight = sa.select(b.c.run, sa.func.min(b.c.created)).where(
            b.c.teacher == teacher, b.c.status == "in_flight"
        )
        owners = dict(c.execute(in_flight.group_by(b.c.run)).all())
        dead = self._dead_runs(c, owners) if owners else set()
        if dead:
            c.execute(
                sa.update(b)
                .where(b.c.run.in_(dead), b.c.status == "in_flight")
                .values(status="lost", closed=time.time(), reason="its run died with the batch in flight")
            )

    # -- reading -------------------------------------------------------------------------------
    def answers(self, teacher: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        a, found = answers_table, {}
        query = sa.select(a.c.input_hash, a.c.classes, a.c.scores, a.c.checksum, a.c.batch).where(
            a.c.teacher == teacher
        )
        with self._transaction("cannot read the stored answers", write=False) as c:
            for chunk in _chunks(hashes):
                for digest, classes, blob, checksum, batch in c.execute(query.where(a.c.input_hash.in_(chunk))):
                    self._verify(teacher, digest, classes, blob, checksum, batch)
                    found[digest] = np.frombuffer(bytes(blob), dtype="<f4").astype(np.float32)
        return found

    def held_elsewhere(self, teacher: str, hashes: Iterable[str], run: str) -> set[str]:
        """Inputs in a batch another live run has in flight: wait for its answer rather than pay twice."""
        b, i = batches_table, items_table
        owners: dict[str, set[str]] = {}
        since: dict[str, float] = {}
        query = _in_flight(teacher, i.c.input_hash, b.c.run, b.c.created).where(b.c.run != run)
        with self._transaction("cannot read the batches in flight", write=False) as c:
            for chunk in _chunks(hashes):
                for digest, owner, created in c.execute(query.where(i.c.input_hash.in_(chunk))):
                    owners.setdefault(owner, set()).add(digest)
                    since[owner] = min(since.get(owner, created), created)
            dead = self._dead_runs(c, since) if owners else set()
        return {digest for owner, digests in owners.items() if owner not in dead for digest in digests}

    def _scalar(self, what: str, query: sa.Select[Any], one: bool = False) -> Any:
        """The first value `query` reads (None: no row; an error if `one`); `what` names the read if it fails."""
        with self._transaction(what, write=False) as c:
            result = c.execute(query)
            return result.scalar_one() if one else result.scalar()

    def spent(self) -> int:
        purse = sa.select(purse_table.c.spent).where(purse_table.c.id == 1)
        return int(self._scalar("cannot read its purse", purse, one=True))

    def imported(self) -> int:
        """Inputs counted by imports (paid for elsewhere, `ledger import`): they count whatever the budget."""
        return int(self._scalar("cannot read its imports", _counted(batches_table.c.run == IMPORT_RUN), one=True))

    def summaries(self) -> list[TeacherSummary]:
        b = batches_table
        totals: defaultdict[str, Counter[str]] = defaultdict(Counter)
        tokens = (sa.func.coalesce(sa.func.sum(b.c[name]), 0) for name in TOKEN_COLUMNS)
        query = sa.select(b.c.teacher, b.c.status, sa.func.sum(b.c.n), *tokens).group_by(b.c.teacher, b.c.status)
        with self._transaction("cannot read its summary", write=False) as c:
            described = dict(c.execute(sa.select(teachers_table.c.teacher, teachers_table.c.description)).all())
            for teacher, status, *counts in c.execute(query):
                totals[teacher].update({name: int(n) for name, n in zip((status, *TOKEN_COLUMNS), counts)})
        return [
            TeacherSummary(
                teacher,
                described.get(teacher, ""),
                sum(totals[teacher][status] for status in STATUSES if status != "refused"),
                **{name: totals[teacher][name] for name in (*STATUSES, *TOKEN_COLUMNS)},
            )
            for teacher in sorted(set(described) | set(totals))
        ]

    def summary(self, teacher: str) -> TeacherSummary:
        nothing = TeacherSummary(teacher, "", 0, 0, 0, 0, 0, 0)
        return next((s for s in self.summaries() if s.teacher == teacher), nothing)

    def export(self, teacher: str) -> tuple[np.ndarray, np.ndarray]:
        """(input hashes, scores) of every stored answer of `teacher`."""
        a = answers_table
        query = sa.select(a.c.input_hash, a.c.scores).where(a.c.teacher == teacher).order_by(a.c.input_hash)
        with self._transaction("cannot read the stored answers", write=False) as c:
            rows = c.execute(query).all()
        hashes = np.asarray([r[0] for r in rows], dtype="U64")
        scores = np.stack([np.frombuffer(bytes(r[1]), dtype="<f4") for r in rows]) if rows else np.zeros((0, 0), "f4")
        return hashes, scores.astype(np.float32)

    # -- writing ---------------------------------------------------------------------------------
    @staticmethod
    def _answered(c: sa.Connection, teacher: str, hashes: list[str] | None = None) -> set[str]:
        """Inputs `teacher` has a stored answer for (of `hashes`, or all of them)."""
        query = sa.select(answers_table.c.input_hash).where(answers_table.c.teacher == teacher)
        if hashes is not None:
            query = query.where(answers_table.c.input_hash.in_(hashes))
        return set(c.execute(query).scalars())

    @staticmethod
    def _add_teacher(c: sa.Connection, teacher: str, description: str) -> None:
        """Describe `teacher` in the teachers table, unless it is there already."""
        t = teachers_table
        if c.execute(sa.select(t.c.teacher).where(t.c.teacher == teacher)).first() is None:
            c.execute(sa.insert(t).values(teacher=teacher, description=description, first_seen=time.time()))

    def reserve(self, teacher: str, run: str, ids: list[int], hashes: list[str], budget: int) -> Reservation | None:
        """Count, durably and under the purse lock, as many of the candidates as the budget allows that are
        neither answered nor in flight; None when there is none (all taken, or no budget left)."""
        i = items_table
        with self._transaction("cannot reserve a batch (nothing was sent)") as c:
            purse = self.lock_purse(c)
            self._settle_dead(c, teacher)
            in_flight = set(c.execute(_in_flight(teacher, i.c.input_hash).where(i.c.input_hash.in_(hashes))).scalars())
            rows = _first_new(hashes, self._answered(c, teacher, hashes) | in_flight)
            rows = rows[: max(0, budget - int(purse["spent"]))]
            if not rows:
                return None
            batch = self._insert_batch(c, teacher, run, "in_flight", [(ids[i], hashes[i]) for i in rows], None)
            return Reservation(batch, rows)

    def _insert_batch(
        self, c: sa.Connection, teacher: str, run: str, status: str, items: list[tuple[int, str]], reason: str | None
    ) -> int:
        """Insert a batch (closed at once unless in flight) carrying `items`, (sample id, input hash), and count
        it in the purse (whose lock the caller holds); its number."""
        now = time.time()
        closed = None if status == "in_flight" else now
        values = {"teacher": teacher, "run": run, "status": status, "n": len(items), "created": now, "closed": closed}
        key = c.execute(sa.insert(batches_table).values(reason=reason, **values)).inserted_primary_key
        if key is None:
            raise self.corrupt("a new batch got no number")
        batch, p = int(key[0]), purse_table
        c.execute(
            sa.insert(items_table),
            [{"batch": batch, "position": n, "sample_id": int(i), "input_hash": h} for n, (i, h) in enumerate(items)],
        )
        c.execute(sa.update(p).where(p.c.id == 1).values(spent=p.c.spent + len(items), batches=p.c.batches + 1))
        return batch

    def _close(
        self, c: sa.Connection, batch: int, status: str, reason: str | None, usage: dict[str, int] | None = None
    ) -> str:
        """Close `batch` with `status` and the tokens of the teacher's `usage` (if any); the teacher it asked."""
        b = batches_table
        tokens = {name: int(usage.get(name, 0)) for name in TOKEN_COLUMNS} if usage else {}
        teacher = c.execute(sa.select(b.c.teacher).where(b.c.batch == batch)).scalar()
        if teacher is None:
            raise self.corrupt(f"batch {batch} vanished while it was in flight")
        c.execute(
            sa.update(b).where(b.c.batch == batch).values(status=status, closed=time.time(), reason=reason, **tokens)
        )
        return str(teacher)

    def write_answers(
        self, batch: int, hashes: list[str], scores: np.ndarray, usage: dict[str, int] | None = None
    ) -> None:
        """Store a paid answer and close its batch with the tokens it cost, in one transaction. Raises the database's
        own error (the caller keeps the answer: it retries, then spills it to a file)."""
        with self.engine.begin() as c:
            teacher = self._close(c, batch, "answered", None, usage)
            present = self._answered(c, teacher, list(hashes))
            rows = [_answer_row(teacher, h, s, batch) for h, s in zip(hashes, scores) if h not in present]
            if rows:
                c.execute(sa.insert(answers_table), rows)

    def mark_rejected(self, batch: int, problem: str, raw: str, usage: dict[str, int] | None = None) -> None:
        """Keep an unusable answer apart, with the teacher's words and the tokens it cost."""
        with self._transaction(f"cannot record the unusable answer of batch {batch}") as c:
            self._close(c, batch, "rejected", problem, usage)
            c.execute(sa.insert(quarantine_table).values(batch=batch, problem=problem, raw=raw))

    def mark_refused(self, batch: int, reason: str) -> None:
        with self._transaction(f"cannot give back the count of refused batch {batch}") as c:
            self.lock_purse(c)
            b = batches_table
            row = c.execute(sa.select(b.c.n, b.c.status).where(b.c.batch == batch)).first()
            if row is None or row[1] == "refused":
                return
            self._close(c, batch, "refused", reason)
            c.execute(sa.update(purse_table).where(purse_table.c.id == 1).values(spent=purse_table.c.spent - row[0]))

    def mark_lost(self, batch: int, reason: str) -> None:
        with self._transaction(f"cannot mark batch {batch} lost (it stays counted either way)") as c:
            self._close(c, batch, "lost", reason)

    def batch_status(self, batch: int) -> str | None:
        b = batches_table
        status: str | None = self._scalar("cannot read a batch", sa.select(b.c.status).where(b.c.batch == batch))
        return status

    def record_answers(self, teacher: str, description: str, hashes: list[str], scores: np.ndarray, reason: str) -> int:
        """Record answers paid elsewhere (an import) as one counted batch of the inputs this store has no answer
        for (importing twice costs nothing), under the purse lock; how many."""
        with self._transaction("cannot import answers") as c:
            self.lock_purse(c)
            self._add_teacher(c, teacher, description)
            rows = _first_new(hashes, self._answered(c, teacher))
            if rows:
                batch = self._insert_batch(c, teacher, IMPORT_RUN, "answered", [(-1, hashes[i]) for i in rows], reason)
                c.execute(sa.insert(answers_table), [_answer_row(teacher, hashes[i], scores[i], batch) for i in rows])
            return len(rows)

    def quarantined(self) -> list[tuple[int, str, str]]:
        with self._transaction("cannot read its quarantine", write=False) as c:
            return [tuple(r) for r in c.execute(sa.select(quarantine_table).order_by(quarantine_table.c.batch))]

    def get_meta(self, key: str) -> str | None:
        m = meta_table
        value: str | None = self._scalar("cannot read its settings", sa.select(m.c.value).where(m.c.key == key))
        return value

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction("cannot write its settings") as c:
            c.execute(sa.delete(meta_table).where(meta_table.c.key == key))
            c.execute(sa.insert(meta_table).values(key=key, value=value))

    # -- asynchronous jobs (ckd.teachers.openai_batch) and the history ----------------------------
    def set_remote(self, batches: list[int], remote: str) -> None:
        """Record, durably, the provider's id of the job that carries `batches` (before polling it)."""
        with self._transaction(f"cannot record the job {remote} (nothing more is sent)") as c:
            c.execute(sa.update(batches_table).where(batches_table.c.batch.in_(batches)).values(remote=remote))

    def unsettled_remote(self, teacher: str) -> dict[str, list[tuple[int, int, str]]]:
        """Jobs of `teacher` that a run submitted and died (or stopped) before recording their results:
        {remote id: [(batch, sample_id, input_hash), ...]}; their batches count (lost) until settled."""
        b, i = batches_table, items_table
        with self._transaction("cannot read the jobs in flight") as c:
            self.lock_purse(c)
            self._settle_dead(c, teacher)
            done_keys = c.execute(sa.select(meta_table.c.key).where(meta_table.c.key.startswith(REMOTE_DONE)))
            done = {key.removeprefix(REMOTE_DONE) for key in done_keys.scalars()}
            rows = c.execute(
                sa.select(b.c.remote, b.c.batch, i.c.sample_id, i.c.input_hash)
                .join(i, i.c.batch == b.c.batch)
                .where(b.c.teacher == teacher, b.c.status == "lost", b.c.remote.is_not(None))
                .order_by(b.c.batch, i.c.position)
            ).all()
        jobs: dict[str, list[tuple[int, int, str]]] = {}
        for remote, batch, sample_id, digest in rows:
            if remote not in done:
                jobs.setdefault(remote, []).append((int(batch), int(sample_id), digest))
        return jobs

    def batch_rows(self, teacher: str | None = None) -> list[dict[str, Any]]:
        """Every batch, oldest first: its time, run, teacher, status, size, tokens, reason and job id."""
        b = batches_table
        query = sa.select(
            b.c.batch,
            b.c.created,
            b.c.closed,
            b.c.run,
            b.c.teacher,
            b.c.status,
            b.c.n,
            b.c.prompt_tokens,
            b.c.completion_tokens,
            b.c.reason,
            b.c.remote,
        ).order_by(b.c.batch)
        if teacher is not None:
            query = query.where(b.c.teacher == teacher)
        with self._transaction("cannot read its batches", write=False) as c:
            return [dict(r) for r in c.execute(query).mappings()]

    def close(self) -> None:
        for stop in self._heartbeats.values():
            stop.set()
        self.engine.dispose()


STORE_SCHEMES: Registry[Store] = Registry("store backend", "teacher.store")


def open_store(spec: str, base: str | Path | None = None, create: bool = True) -> Store:
    """`spec`: a path (SQLite; a relative one from the main repository's root) or a backend's URL
    (`postgresql://USER@HOST:PORT/DB`). Without `create`, an absent store is one line and nothing is made."""
    from ckd.store import postgresql, sqlite  # noqa: F401  (registers the backends)

    scheme = spec.split("://", 1)[0].split("+", 1)[0] if "://" in spec else "sqlite"
    backend: Any = STORE_SCHEMES.get(scheme)  # a Store class, registered by its URL scheme
    result: Store = backend.from_spec(spec, base, create=create)
    return result
