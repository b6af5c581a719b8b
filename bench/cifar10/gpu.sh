#!/usr/bin/env bash
# The CIFAR-10 benchmark (bench/cifar10/GPU_RUN.md): `bash bench/cifar10/gpu.sh` on the GPU machine (results under
# $OUT), `bash bench/cifar10/gpu.sh --smoke` on the CPU (the same code path, tiny scale, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-$(command -v python || command -v python3)}"  # the device may have only python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1 OMP_NUM_THREADS=1
if [[ " $* " == *" --smoke "* ]]; then
  export OUT="${OUT:-$PWD/bench_results/cifar10_smoke}"
  exec nice -n 10 "$PY" bench/cifar10/gpu.py "$@"
fi
exec "$PY" bench/cifar10/gpu.py "$@"
