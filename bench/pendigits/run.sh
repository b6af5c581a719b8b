#!/usr/bin/env bash
# issue 17, tables: the pendigits benchmark behind docs/benchmarks/tables-text.md. From the repository root:
#   nice -n 10 bash bench/pendigits/run.sh dev     # then: python bench/tables_text_report.py ... (prints the choice)
#   nice -n 10 bash bench/pendigits/run.sh test
#   nice -n 10 bash bench/pendigits/run.sh student  # data seed 0, student seeds 0-4: the student's own spread
#   nice -n 10 bash bench/pendigits/run.sh prop     # label propagation on dev, a later candidate -> propagation.md
#   python bench/tables_text_report.py bench_results/pendigits bench/pendigits
# dev: a split of the pool (pendigits_train.csv, 1500 rows held out as the dev test), 5 data seeds: the 2 x 2 of
# {feature corruption of the queried rows} x {consistency term on the free pool}, and TypiClust vs random selection.
# test: pool = pendigits_train.csv, test = pendigits_test.csv (other writers), 5 data seeds x 1 student seed (the
# time on 2 shared cores).
# student: the test split with the data seed fixed (0) and 5 student seeds (0-4): the default recipe at 100 and 300,
# augmented KD at 300, 500, 900 and 1500, on the same teacher as test (made first if bench_results/ lacks it).
set -euo pipefail
P=examples/pendigits/params.yaml
OUT=${OUT:-bench_results/pendigits}
COMMON=(--params $P --seeds 5 --science-seeds 0 --regimes labelled --workers ${WORKERS:-1})
if [ "$1" = dev ]; then
  DEV=("${COMMON[@]}" --set data.test_source=null --test-size 1500 --student-seeds 1 --budgets 100,300)
  python -m bench "${DEV[@]}" --variants kd,kd_corrupt,kd_pool,kd_corrupt_pool --selection random \
    --out $OUT/dev_random
  python -m bench "${DEV[@]}" --variants kd_pool --selection typiclust --teacher $OUT/dev_random/teacher.onnx \
    --out $OUT/dev_typiclust
elif [ "$1" = prop ]; then
  # label propagation to the pool (kd_prop) beside its controls on dev, TypiClust inputs -> propagation.md
  DEV=("${COMMON[@]}" --set data.test_source=null --test-size 1500 --student-seeds 1 --budgets 100,300)
  TEACHER=()
  [ -e $OUT/dev_random/teacher.onnx ] && TEACHER=(--teacher $OUT/dev_random/teacher.onnx)
  python -m bench "${DEV[@]}" "${TEACHER[@]}" --variants kd,kd_pool,kd_prop --selection typiclust --out $OUT/dev_prop
  python bench/tables_text_report.py --addendum propagation kd_prop+typiclust $OUT bench/pendigits dev_prop
elif [ "$1" = student ]; then
  if [ ! -e $OUT/dev_random/teacher.onnx ]; then  # the dev mode's teacher: the same split and settings, one row
    python -m bench "${COMMON[@]}" --set data.test_source=null --test-size 1500 --seeds 1 --student-seeds 1 \
      --budgets 100 --variants kd --selection random --out $OUT/dev_random
  fi
  STUDENT=(--params $P --seeds 1 --student-seeds 5 --science-seeds 0 --regimes labelled --workers ${WORKERS:-1}
    --teacher $OUT/dev_random/teacher.onnx)
  python -m bench "${STUDENT[@]}" --budgets 100,300 --variants kd_pool --selection typiclust \
    --out $OUT/student_default &
  python -m bench "${STUDENT[@]}" --budgets 300,500,900,1500 --variants kd_corrupt --selection random \
    --out $OUT/student_kd &
  wait
else
  # the parts side by side (one worker each), on the stand-in teacher trained once on the dev pool (part of
  # pendigits_train.csv: it never saw pendigits_test.csv), the time on 2 shared cores
  TEST=("${COMMON[@]}" --teacher $OUT/dev_random/teacher.onnx)
  # the ceiling: the same student, cross-entropy on the labels of every pool input (7494)
  python -m bench "${TEST[@]}" --student-seeds 1 --budgets 7494 --variants ce --selection random \
    --out $OUT/test_ceiling &
  python -m bench "${TEST[@]}" --student-seeds 1 --budgets 100,300 --variants kd,kd_corrupt,kd_pool \
    --selection random --out $OUT/test_random &
  python -m bench "${TEST[@]}" --student-seeds 1 --budgets 100,300 --variants kd_pool --selection typiclust \
    --out $OUT/test_typiclust &
  # KD at 3N and 5N: 500 = 5 x 100, 900 = 3 x 300, 1500 = 5 x 300 (300 = 3 x 100 above); plain and with corruption
  python -m bench "${TEST[@]}" --student-seeds 1 --budgets 500,900,1500 --variants kd,kd_corrupt \
    --selection random --out $OUT/test_kd &
  wait
fi
