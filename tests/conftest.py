import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
# Prefect's temporary API server may take long to start on a busy machine (its default wait is 20 s).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "600")
# The counting teacher (`teacher.kind: counting`) is the tests' own backend, registered through ckd's plugin
# variable in this process and in every stage the tests start (copy_project copies it into each project).
os.environ["CKD_PLUGINS"] = ",".join(
    filter(None, [*os.environ.get("CKD_PLUGINS", "").split(","), "tests.helpers.counting"])
)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import PROJECT, linear_onnx_teacher  # noqa: E402,F401  (tests import them from here too)


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API server and database for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):  # None: the setting above
        yield


@pytest.fixture
def onnx_teacher(tmp_path):
    return linear_onnx_teacher(tmp_path / "teacher.onnx", input_shape=[1, 8, 8])


@pytest.fixture
def digits_like():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, size=(120, 8, 8)).astype(np.float32)
    return np.arange(1000, 1120), x


# Per-marker guards against a hang (pyproject.toml: markers; the default, `timeout`, is for the rest).
MARKER_TIMEOUT_S = {"slow": 3600, "server": 3600}


def pytest_collection_modifyitems(config, items):
    for item in items:
        limits = [seconds for marker, seconds in MARKER_TIMEOUT_S.items() if item.get_closest_marker(marker)]
        if limits and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(max(limits)))


# PostgreSQL for the team store's tests: a server must answer (CI starts it); each test gets a fresh database,
# dropped at the end. Where no server answers these tests fail, they are not skipped.
PG_ADMIN = os.environ.get("CKD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_store_url():
    import uuid

    import sqlalchemy as sa

    name = f"ckd_test_{uuid.uuid4().hex[:12]}"
    admin_url = sa.make_url(PG_ADMIN)
    admin = sa.create_engine(admin_url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_spec(request, tmp_path):
    """The same test against each backend of the store."""
    if request.param == "sqlite":
        return str(tmp_path / "store")
    return request.getfixturevalue("pg_store_url")
