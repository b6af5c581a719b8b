#!/usr/bin/env bash
# Issue 9: is a CNN student better than the MLP at the same teacher budget on images of 16 px and more?
# The default recipe (ckd_pool), MNIST, N = 100 and 300, 3 seeds, labelled regime; only the student differs.
# The CNN run reuses the MLP run's stand-in teacher, so both ask the same teacher about the same inputs.
set -euo pipefail
COMMON="--dataset ../shared/data/mnist_t10k.npz --budgets 100,300 --seeds 3 --science-seeds 0 --variants ckd_pool --regimes labelled"
nice python -m ckd.bench $COMMON --arch mlp --arch-args '{"hidden": [64]}' --out bench_results/arch_mlp
nice python -m ckd.bench $COMMON --arch cnn --arch-args '{"channels": [16, 32]}' \
  --teacher bench_results/arch_mlp/teacher.onnx --out bench_results/arch_cnn
