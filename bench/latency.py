"""Latency of the pipeline's student in four runtimes at batch 1 and 256 (median ms per call, 1 thread):

    python bench/latency.py            # after `dvc repro`; writes bench/latency.md and .json

PyTorch (the checkpoint), ONNX Runtime fp32 and int8 (the QDQ model), OpenVINO (the fp32 ONNX file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from ckd.data import TestSet
from ckd.latency import BATCH_SIZES, measure, onnx_runner, openvino_runner, torch_runner
from ckd.students.checkpoint import StudentCheckpoint

RUNTIMES = {
    "torch": "PyTorch",
    "ort": "ONNX Runtime fp32",
    "int8": "ONNX Runtime int8 (QDQ)",
    "openvino": "OpenVINO fp32",
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python bench/latency.py", description=__doc__.strip().splitlines()[0])
    p.add_argument("--checkpoint", default="models/student.pt")
    p.add_argument("--onnx", default="models/student.onnx")
    p.add_argument("--int8", default="models/student.int8.onnx")
    p.add_argument("--test", default="data/test.npz")
    p.add_argument("--runs", type=int, default=500, help="calls at batch 1 (a tenth of them at batch 256)")
    p.add_argument("--out", default="bench/latency")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    checkpoint = StudentCheckpoint.load(args.checkpoint)
    model = checkpoint.model()
    x = TestSet.load(args.test).x
    runners = {
        "torch": lambda b: torch_runner(model, b),
        "ort": lambda b: onnx_runner(args.onnx, b),
        "int8": lambda b: onnx_runner(args.int8, b),
        "openvino": lambda b: openvino_runner(args.onnx, b),
    }
    figures = measure(runners, x, args.runs)
    command = "python bench/latency.py " + " ".join(argv if argv is not None else sys.argv[1:])
    student = f"{checkpoint.arch} {json.dumps(checkpoint.arch_args)}, input {checkpoint.sample_shape}"
    rows = [
        "| runtime | " + " | ".join(f"batch {b} (ms)" for b in BATCH_SIZES) + " |",
        "|---|" + "---|" * len(BATCH_SIZES),
    ]
    rows += [
        f"| {label} | " + " | ".join(f"{figures[f'latency_ms_batch{b}_{key}']:.4f}" for b in BATCH_SIZES) + " |"
        for key, label in RUNTIMES.items()
    ]
    text = (
        f"Student: {student}. Median wall time of one call, 1 thread, {args.runs} calls at batch 1 and "
        f"{max(10, args.runs // 10)} at batch 256; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end.\n\n"
        + "\n".join(rows)
        + f"\n\n`{command.strip()}`\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text(text)
    Path(f"{args.out}.json").write_text(
        json.dumps({"student": student, "command": command.strip(), **figures}, indent=2) + "\n"
    )
    print(text)


if __name__ == "__main__":
    main()
