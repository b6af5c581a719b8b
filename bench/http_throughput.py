"""Teacher throughput: the `http` backend against KServe's real model server on loopback, at several
batch sizes and concurrencies, beside the ONNX file backend on the same teacher.

    python bench/http_throughput.py [--teacher models/standin/teacher.onnx] [--samples 2048]

Every figure is samples answered per second through `run_query` (ledger, fsyncs and storage included),
each configuration on fresh inputs so nothing is answered from the store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: KServe's launcher is a test helper

from ckd.query import run_query  # noqa: E402
from ckd.teachers.http_oip import OpenInferenceTeacher  # noqa: E402
from ckd.teachers.onnx_file import OnnxFileTeacher  # noqa: E402
from tests.helpers.servers import KServeTeacher  # noqa: E402


def samples_per_second(teacher, x: np.ndarray, batch_size: int, store: Path) -> float:
    ids = np.arange(len(x))
    start = time.perf_counter()
    result = run_query(teacher, ids, x, 10, len(x), store, batch_size, progress=False)
    seconds = time.perf_counter() - start
    assert len(result.ids) == len(x)
    return len(x) / seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python bench/http_throughput.py", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument("--teacher", default="models/standin/teacher.onnx")
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch-sizes", default="1,32,256")
    parser.add_argument("--concurrency", default="1,4")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    rows = []
    with KServeTeacher(args.teacher) as url, tempfile.TemporaryDirectory() as scratch:
        for batch_size in batch_sizes:
            count = min(args.samples, 256 * batch_size)
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                x = rng.integers(0, 17, size=(count, 8, 8)).astype(np.float32)
                teacher = OpenInferenceTeacher(url, "teacher", concurrency=concurrency)
                store = Path(scratch) / f"http-{batch_size}-{concurrency}"
                rows.append(
                    (
                        "http (KServe, loopback)",
                        batch_size,
                        concurrency,
                        count,
                        samples_per_second(teacher, x, batch_size, store),
                    )
                )
            x = rng.integers(0, 17, size=(count, 8, 8)).astype(np.float32)
            rows.append(
                (
                    "onnx file (ONNX Runtime)",
                    batch_size,
                    1,
                    count,
                    samples_per_second(
                        OnnxFileTeacher(args.teacher), x, batch_size, Path(scratch) / f"onnx-{batch_size}"
                    ),
                )
            )
    print("| backend | batch | concurrency | samples | samples/s |")
    print("|---|---|---|---|---|")
    for backend, batch_size, concurrency, count, rate in rows:
        print(f"| {backend} | {batch_size} | {concurrency} | {count} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
