"""The embedded store: one SQLite database (WAL, every write in a `BEGIN IMMEDIATE` transaction).

A relative `teacher.store` path lives at the *main* repository's root, so the workspace, a git worktree,
`dvc exp run --temp` and experiments run by `dvc queue start` all reach the same file without any setting. DVC
runs temporary and queued experiments in `<root>/.dvc/tmp/exps/[standalone/]tmpXXXXXXXX`, a fresh git repository
of its own (dvc/repo/experiments/executor/local.py: `mkdtemp(dir=repo.tmp_dir/exps)`; queue/tempdir.py:
`exps/standalone`), so neither the working directory nor its git directory points at the workspace: the path is
cut at `/.dvc/tmp/exps/`. A git worktree's own `.git` file names the common git directory, whose parent is the
main worktree.
"""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ckd.errors import CkdError, ConfigError
from ckd.store.base import STORE_SCHEMES, Store

STORE_FILE = "ckd-store.sqlite"
SUFFIXES = (".sqlite", ".sqlite3", ".db")
EXPERIMENT_DIR = os.sep + os.path.join(".dvc", "tmp", "exps") + os.sep


def _main_worktree(root: Path) -> Path:
    """For a linked git worktree, the main worktree (parent of the common git directory)."""
    dot_git = root / ".git"
    text = dot_git.read_text().strip() if dot_git.is_file() else ""
    if not text.startswith("gitdir:"):
        return root
    git_dir = (root / text.split(":", 1)[1].strip()).resolve()
    common = git_dir / "commondir"
    common_dir = (git_dir / common.read_text().strip()).resolve() if common.is_file() else git_dir
    return common_dir.parent if common_dir.name == ".git" else root


def project_root(start: str | Path | None = None) -> Path:
    """The main repository's root, the same for every workspace and experiment of that repository."""
    start = Path(start or os.getcwd()).resolve()
    text = str(start) + os.sep
    if EXPERIMENT_DIR in text:  # a DVC temporary or queued experiment
        return Path(text.split(EXPERIMENT_DIR, 1)[0])
    return _main_worktree(next((d for d in (start, *start.parents) if (d / ".dvc").is_dir()), start))


def store_file(spec: str, base: str | Path | None = None) -> Path:
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = project_root(base) / path
    return path if path.suffix in SUFFIXES else path / STORE_FILE


@STORE_SCHEMES.register("sqlite")
class SqliteStore(Store):
    scheme = "sqlite"

    @classmethod
    def from_spec(cls, spec: str, base: str | Path | None = None, create: bool = True) -> SqliteStore:
        if spec.startswith("sqlite:///"):  # SQLAlchemy's spelling: sqlite:///relative, sqlite:////absolute
            spec = spec[len("sqlite:///") :]
        if not spec:
            raise ConfigError("teacher.store", "must be a path (SQLite) or postgresql://USER@HOST:PORT/DB")
        path = store_file(spec, base)
        if not create and not path.is_file():
            raise CkdError(f"teacher.store {path}: no store there (nothing was created)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError("teacher.store", f"cannot create the folder {path.parent} ({error.strerror})") from None
        url = sa.URL.create("sqlite", database=str(path))
        args = {"check_same_thread": False, "timeout": 120, "isolation_level": None}
        return cls(str(path), url, create=create, connect_args=args)

    def __init__(self, location: str, url: Any, **engine_args: Any) -> None:
        self.path = Path(location)
        # only an absent file is a fresh start; its size before SQLite opens it (which writes a header)
        self.size_before = self.path.stat().st_size if self.path.exists() else None
        self._events_ready = False  # the engine's listeners, registered once by `_open`
        super().__init__(location, url, **engine_args)
        self.spill_dirs = [self.path.parent / "spill"]

    def _set_events(self) -> None:
        @sa.event.listens_for(self.engine, "connect")
        def connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=FULL")  # a committed reservation survives a power cut
            cursor.execute("PRAGMA busy_timeout=120000")  # a waiting writer gives up after 2 minutes, never hangs
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(self.engine, "begin")
        def begin(connection: Any) -> None:
            # Every transaction takes the write lock at its start: a reservation reads and writes the purse
            # atomically, with no upgrade deadlock between two writers.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _open(self) -> None:
        if not self._events_ready:  # a second `_open` on this engine must not add a second BEGIN IMMEDIATE
            self._set_events()
            self._events_ready = True
        super()._open()
        # WAL once the file is known to be a store (set here, not on connecting: opening a damaged or foreign
        # file writes nothing to it, so `ledger check` later reads it as the run found it). It stays set.
        with closing(self.engine.raw_connection()) as raw:
            raw.cursor().execute("PRAGMA journal_mode=WAL")

    def absent(self, connection: sa.Connection) -> str | None:
        """A file that was there before this run opened it, without the store's tables, is damage: 0 bytes
        (truncated), another program's database, an empty database."""
        size = self.size_before
        if size is None:
            return None
        if size == 0:
            return "the file has 0 bytes"
        tables = sa.inspect(connection).get_table_names()
        return f"a {size}-byte file with " + (f"other tables: {', '.join(tables[:5])}" if tables else "no tables")
