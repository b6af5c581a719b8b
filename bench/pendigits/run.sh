#!/usr/bin/env bash
# issue 17, tables: the pendigits benchmark behind docs/benchmarks/tables-text.md. Run from the repository root:
#   nice -n 10 bash bench/pendigits/run.sh            (results under bench_results/pendigits/, then copied here)
# dev: a split of the pool (pendigits_train.csv, 1500 rows held out as the dev test) on which the recipe and the
# selection are chosen, 5 data seeds; test: pool = pendigits_train.csv, test = pendigits_test.csv (other writers),
# 5 data seeds x 2 student seeds per cell. The recipes: the 2 x 2 of {feature corruption} x {pool consistency term}.
set -euo pipefail
P=examples/pendigits/params.yaml
OUT=${OUT:-bench_results/pendigits}
COMMON=(--params $P --seeds 5 --science-seeds 0 --regimes labelled --workers ${WORKERS:-2})
RECIPES=kd,kd_corrupt,kd_pool,kd_corrupt_pool
DEV=(--set data.test_source=null --test-size 1500 --student-seeds 1)
python -m ckd.bench "${COMMON[@]}" "${DEV[@]}" --budgets 100,300 --variants $RECIPES --selection random --out $OUT/dev_random
python -m ckd.bench "${COMMON[@]}" "${DEV[@]}" --budgets 100,300 --variants kd_corrupt_pool --selection typiclust \
  --teacher $OUT/dev_random/teacher.onnx --out $OUT/dev_typiclust
TEST=(--student-seeds 2 --teacher $OUT/test_random/teacher.onnx)
python -m ckd.bench "${COMMON[@]}" --student-seeds 2 --budgets 100,300 --variants $RECIPES --selection random --out $OUT/test_random
python -m ckd.bench "${COMMON[@]}" "${TEST[@]}" --budgets 100,300 --variants kd_corrupt_pool --selection typiclust \
  --out $OUT/test_typiclust
# augmented KD (feature corruption) at 3N and 5N: 500 = 5 x 100, 900 = 3 x 300, 1500 = 5 x 300 (300 = 3 x 100 above)
python -m ckd.bench "${COMMON[@]}" "${TEST[@]}" --budgets 500,900,1500 --variants kd_corrupt --selection random \
  --out $OUT/test_kd
# the ceiling: the same student, cross-entropy on the labels of every pool input (7494)
python -m ckd.bench "${COMMON[@]}" "${TEST[@]}" --budgets 7494 --variants ce --selection random --out $OUT/test_ceiling
