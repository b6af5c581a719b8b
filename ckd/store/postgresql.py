"""The team store: PostgreSQL through SQLAlchemy Core over psycopg 3. `teacher.store:
postgresql://USER@HOST:PORT/DB`; a password never goes in params.yaml: libpq reads it from PGPASSWORD or
~/.pgpass. The purse row is locked with SELECT ... FOR UPDATE for every change of what is counted."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from ckd.errors import ConfigError
from ckd.store.base import STORE_SCHEMES, Store

SCHEMA_LOCK = 0x636B64  # pg_advisory_xact_lock key: two first runs on an empty database create the schema once


@STORE_SCHEMES.register("postgresql")
class PostgresStore(Store):
    # spill files go to ~/.cache/ckd/spill only (`ckd.store.spill.spill_dirs`): the server has no folder of ours
    scheme = "postgresql"

    @classmethod
    def from_spec(cls, spec: str, base: str | Path | None = None, create: bool = True) -> PostgresStore:
        try:
            url = sa.make_url(spec)
        except sa.exc.ArgumentError:
            raise ConfigError("teacher.store", "must be postgresql://USER@HOST:PORT/DB") from None
        if url.password:
            raise ConfigError(
                "teacher.store",
                "holds a password; remove it and set PGPASSWORD or ~/.pgpass instead "
                "(params.yaml and dvc.lock must carry no secret)",
            )
        if not url.database:
            raise ConfigError("teacher.store", "must name the database: postgresql://USER@HOST:PORT/DB")
        url = url.set(drivername="postgresql+psycopg")
        return cls(
            url.set(drivername="postgresql").render_as_string(hide_password=True),
            url,
            create=create,
            pool_pre_ping=True,
            connect_args={
                "connect_timeout": 10,
                # no statement waits for a lock for ever: a run that cannot get the purse stops with a clear line
                "options": "-c lock_timeout=120000 -c idle_in_transaction_session_timeout=300000",
            },
        )

    def init_lock(self, connection: sa.Connection) -> None:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
