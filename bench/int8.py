"""int8 choices on the pipeline's student: per-tensor vs per-channel weight scales, three calibration
methods, and which ops are quantised (MatMul/Gemm/Conv only, the default, or every op ONNX Runtime can):

    python bench/int8.py             # after `dvc repro`; writes bench/int8.md

Calibration inputs: pool inputs never sent to the teacher, as in `export`. Accuracy on the test split.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import ckd.quantize as quantize
from ckd.data import Pool, Selection, TestSet
from ckd.validate import onnx_logits


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python bench/int8.py", description=__doc__.strip().splitlines()[0])
    p.add_argument("--onnx", default="models/student.onnx")
    p.add_argument("--pool", default="data/pool.npz")
    p.add_argument("--selected", default="data/selected.npz")
    p.add_argument("--test", default="data/test.npz")
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--out", default="bench/int8.md")
    args = p.parse_args(argv)
    pool, test = Pool.load(args.pool), TestSet.load(args.test)
    calibration = quantize.calibration_inputs(pool.ids, pool.x, Selection.load(args.selected).ids, args.samples, 0)
    fp32 = onnx_logits(args.onnx, test.x)
    fp32_accuracy = float((fp32.argmax(1) == test.labels).mean())
    rows = [
        "| ops quantised | weight scales | calibration | int8 accuracy | drop (points) | argmax agreement "
        "| max abs logit diff |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        for ops_label, ops in (("MatMul, Gemm, Conv", quantize.QUANTIZED_OPS), ("all", ())):
            for per_channel in (True, False):
                for method in quantize.CALIBRATION_METHODS:
                    path = quantize.quantize_int8(
                        args.onnx, Path(scratch) / "m.onnx", calibration, per_channel, method, ops
                    )
                    figures = quantize.int8_metrics(fp32, onnx_logits(path, test.x), test.labels)
                    rows.append(
                        f"| {ops_label} | {'per channel' if per_channel else 'per tensor'} | {method} | "
                        f"{figures['int8_test_accuracy']:.4f} | "
                        f"{100 * (fp32_accuracy - figures['int8_test_accuracy']):+.1f} | "
                        f"{figures['int8_argmax_agreement']:.4f} | {figures['int8_max_abs_diff']:.3f} |"
                    )
    text = (
        f"fp32 ONNX accuracy {fp32_accuracy:.4f} on {len(test.x)} test samples; {len(calibration)} "
        f"calibration inputs never sent to the teacher.\n\n"
        + "\n".join(rows)
        + f"\n\n`python bench/int8.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
