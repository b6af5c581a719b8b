#!/usr/bin/env bash
# Where does comparing beat its per-sample control? `ckd` against `ckd_control` (the same members per
# step, the comparison replaced by per-sample logit matching), 6 seeds, both regimes, one budget,
# varying one thing at a time. Results: bench_results/sweep-*/results.md (copied to bench/sweeps/).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MNIST=${MNIST:-../shared/data/mnist_t10k.npz}
# --steps 1500 (and MNIST's test split of 2000): the settings these results were measured with
common=(--variants ckd,ckd_control --science-variants ckd,ckd_control --seeds 6 --science-seeds 6 --steps 1500)

run() { name=$1; shift; "$PY" -m ckd.bench "${common[@]}" --out "bench_results/sweep-$name" "$@"; }

run digits-groups2      --dataset digits --budgets 60 --group-size 2
run digits-wrel4        --dataset digits --budgets 60 --method-args '{"ckd": {"w_rel": 4.0}}'
run digits-wrel4-weakanchor --dataset digits --budgets 60 --method-args '{"ckd": {"w_rel": 4.0, "w_anchor": 0.25}}'
run digits-fewgroups    --dataset digits --budgets 60 --max-groups 100
run digits-cnn          --dataset digits --budgets 60 --arch cnn --arch-args '{"channels": [16, 32]}'
run digits-steps4000    --dataset digits --budgets 60 --steps 4000
run digits-kcenter      --dataset digits --budgets 60 --selection kcenter
mnist_teacher=(--teacher bench_results/mnist_t10k/teacher.onnx --test-size 2000 --teacher-epochs 8)  # trained by the main MNIST benchmark
if [ -f "$MNIST" ]; then
  run mnist-wrel4 "${mnist_teacher[@]}"       --dataset "$MNIST" --budgets 300 --method-args '{"ckd": {"w_rel": 4.0}}'
  run mnist-groups2 "${mnist_teacher[@]}"     --dataset "$MNIST" --budgets 300 --group-size 2
  run mnist-noaug "${mnist_teacher[@]}"       --dataset "$MNIST" --budgets 300 --augment none
  run mnist-kcenter "${mnist_teacher[@]}"     --dataset "$MNIST" --budgets 100 --selection kcenter
fi
