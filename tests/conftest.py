import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def linear_onnx_teacher(path: Path, features: int = 64, classes: int = 10, input_shape=None, seed: int = 0,
                        nan_below: float | None = None, output_classes: int | None = None) -> Path:
    """A black-box ONNX teacher: logits = flatten(x) W + b. With `nan_below`, rows whose input sum is
    below it come back NaN (log of a negative number), like a broken teacher."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    out_classes = output_classes or classes
    w = rng.normal(size=(features, out_classes)).astype(np.float32) * 0.3
    b = rng.normal(size=(out_classes,)).astype(np.float32)
    input_shape = input_shape or [features]
    nodes = [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["raw" if nan_below is not None else "scores"])]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")]
    if nan_below is not None:
        nodes += [helper.make_node("ReduceSum", ["flat", "axes"], ["total"], keepdims=1),
                  helper.make_node("Sub", ["total", "threshold"], ["shifted"]),
                  helper.make_node("Log", ["shifted"], ["logged"]),
                  helper.make_node("Mul", ["logged", "zero"], ["poison"]),
                  helper.make_node("Add", ["raw", "poison"], ["scores"])]
        inits += [numpy_helper.from_array(np.array([1], np.int64), "axes"),
                  numpy_helper.from_array(np.array(nan_below, np.float32), "threshold"),
                  numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    graph = helper.make_graph(nodes, "teacher",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *input_shape])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", out_classes])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def onnx_teacher(tmp_path):
    return linear_onnx_teacher(tmp_path / "teacher.onnx", input_shape=[1, 8, 8])


@pytest.fixture
def digits_like():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, size=(120, 8, 8)).astype(np.float32)
    return np.arange(1000, 1120), x


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
