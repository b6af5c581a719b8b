"""The benchmark grid as Prefect tasks on a local 2-worker Dask cluster (processes on 127.0.0.1):
every cell's answers come from one shared store, so inputs shared by cells and a second run are never
paid for twice."""

import pytest

pytest.importorskip("prefect_dask", reason="the `cluster` extra (prefect-dask, dask[distributed]) is not installed")

from tests.helpers import linear_onnx_teacher  # noqa: E402


@pytest.mark.slow  # a Prefect server, two Dask worker processes and two grids: minutes on a busy 2-core machine
def test_grid_on_a_local_two_worker_cluster_pays_each_input_once(tmp_path):
    from dask.distributed import LocalCluster
    from prefect.testing.utilities import prefect_test_harness

    from bench.grid import run_grid
    from bench.run import parse_args

    teacher = linear_onnx_teacher(tmp_path / "teacher.onnx", input_shape=[1, 8, 8])
    store = tmp_path / "store.sqlite"
    args = parse_args(
        ["--dataset", "digits", "--budgets", "20,40", "--seeds", "1", "--science-seeds", "1",
         "--variants", "kd,ckd", "--science-variants", "ckd", "--regimes", "labelled",
         "--steps", "30", "--lr", "0.003", "--teacher", str(teacher), "--out", str(tmp_path / "out")]
    )  # fmt: skip
    args.store, args.store_budget = str(store), None
    # An existing cluster, reached by its address as on several machines (README: `--address`).
    with (
        prefect_test_harness(server_startup_timeout=300),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
    ):
        args.address = cluster.scheduler_address
        assert len(cluster.workers) == 2
        first = run_grid(args)
        second = run_grid(args)
    # Two cells (N=20 and N=40, seed 0) asked at once; selection is nested, so the 20 are among the 40.
    assert sorted((c["budget"], c["seed"]) for c in first["cells"]) == [(20, 0), (40, 0)]
    assert first["store_budget"] == 60
    assert sum(c["new_calls"] for c in first["cells"]) == 40 == max(c["store_calls"] for c in first["cells"])
    assert sum(c["new_calls"] for c in second["cells"]) == 0
    assert all(c["store_calls"] == 40 for c in second["cells"])  # the store's count, over its life
    assert all(c["overrides"]["teacher.store"] == str(store) for c in first["cells"])  # one store for all
    rows = first["rows"]
    assert sorted((r["budget"], r["variant"]) for r in rows) == [(20, "ckd"), (20, "kd"), (40, "ckd"), (40, "kd")]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 and r["teacher_calls"] == r["budget"] for r in rows)
