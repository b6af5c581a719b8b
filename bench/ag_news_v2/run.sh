#!/usr/bin/env bash
# issue 17, text: the AG News benchmark behind docs/benchmarks/tables-text.md (the stand-in LLM teacher, an MLP head
# on frozen all-MiniLM-L6-v2 embeddings). From the repository root, after the example's download and embed stages
# with its params (they leave data/embedded.npz, the default --embedded; `bash examples/ag_news/run.sh` does too):
#   python -m ckd.stages.download --params examples/ag_news/params.yaml --out data/download.json --metrics ''
#   python -m ckd.stages.embed --params examples/ag_news/params.yaml --out data/embedded.npz --metrics ''
#   nice -n 10 bash bench/ag_news_v2/run.sh dev     # choose the recipe (bench/tables_text_report.py prints it)
#   nice -n 10 bash bench/ag_news_v2/run.sh test    # every candidate on the test split; the chosen one is reported
#   nice -n 10 bash bench/ag_news_v2/run.sh student # data seed 0, student seeds 0-4: the student's own spread
#   nice -n 10 bash bench/ag_news_v2/run.sh prop    # label propagation, a later candidate, on dev
#   nice -n 10 bash bench/ag_news_v2/run.sh prop_test kd_corrupt_prop  # the dev choice on test -> propagation.md
# examples/ag_news/params.yaml runs the chosen recipe (TEXT_DEFAULT_RECIPE; tests/test_bench_text.py checks it).
# dev: 1000 pool texts held out as the dev test (the test split is never read), 5 data seeds.
# test: the example's split (pool 6000, test 1600), 5 data seeds.
# student: the test split, data seed 0, student seeds 0-4: kd_corrupt_pool (the default then) at 100 and 300, augmented KD at 300,
# 500, 900 and 1500.
set -euo pipefail
OUT=${OUT:-bench_results/ag_news_v2}
RECIPES=kd,kd_corrupt,kd_pool,kd_corrupt_pool
PROP=(--seeds 5 --student-seeds 1 --regimes labelled --workers 1 --budgets 100,300 --selection typiclust
  --embedded ${EMBEDDED:-data/embedded.npz})
if [ "$1" = dev ]; then
  COMMON=(--seeds 5 --student-seeds 1 --regimes labelled --workers ${WORKERS:-1} --dev-size 1000 --budgets 100,300)
  python -m bench.text "${COMMON[@]}" --variants $RECIPES --selection random --out $OUT/dev_random
  python -m bench.text "${COMMON[@]}" --variants kd_corrupt_pool --selection typiclust --out $OUT/dev_typiclust
elif [ "$1" = prop ]; then
  # label propagation to the pool (student.unlabelled_targets: neighbours) beside its controls on dev, TypiClust
  # inputs, and its two settings one at a time (5 or 30 neighbours, pool weight 3)
  python -m bench.text "${PROP[@]}" --dev-size 1000 --variants kd_corrupt,kd_corrupt_pool,kd_corrupt_prop \
    --out $OUT/dev_prop &
  python -m bench.text "${PROP[@]}" --dev-size 1000 \
    --variants kd_corrupt_prop_k5,kd_corrupt_prop_k30,kd_corrupt_prop_w3 --out $OUT/dev_prop_grid &
  wait
elif [ "$1" = prop_test ]; then
  # the dev choice ($2, a recipe) on test beside the former default, and augmented KD at 3N and 5N, on this code
  python -m bench.text "${PROP[@]}" --variants "$2",kd_corrupt_pool --out $OUT/test_prop &
  python -m bench.text "${PROP[@]}" --budgets 300,500,900,1500 --variants kd_corrupt --selection random \
    --out $OUT/test_prop_kd &
  wait
  python bench/tables_text_report.py --addendum propagation "$2+typiclust" $OUT bench/ag_news_v2 \
    dev_prop dev_prop_grid test_prop test_prop_kd
elif [ "$1" = student ]; then
  STUDENT=(--seeds 1 --student-seeds 5 --regimes labelled --workers ${WORKERS:-1})
  python -m bench.text "${STUDENT[@]}" --budgets 100,300 --variants kd_corrupt_pool --selection typiclust \
    --out $OUT/student_default &
  python -m bench.text "${STUDENT[@]}" --budgets 300,500,900,1500 --variants kd_corrupt --selection random \
    --out $OUT/student_kd &
  wait
else
  # 5 data seeds x 1 student seed (student seed = data seed), the three parts side by side: the time on 2 shared
  # cores (the dev split compares every ingredient with its control; the test split reports the chosen recipe,
  # its augmented-KD control and KD at 3N/5N)
  COMMON=(--seeds 5 --student-seeds 1 --regimes labelled --workers ${WORKERS:-1})
  python -m bench.text "${COMMON[@]}" --budgets 100,300 --variants kd_corrupt,kd_corrupt_pool \
    --selection random --out $OUT/test_random &
  python -m bench.text "${COMMON[@]}" --budgets 100,300 --variants kd_corrupt_pool --selection typiclust \
    --out $OUT/test_typiclust &
  # augmented KD (embedding corruption) at 3N and 5N: 500 = 5 x 100, 900 = 3 x 300, 1500 = 5 x 300 (300 above)
  python -m bench.text "${COMMON[@]}" --budgets 500,900,1500 --variants kd_corrupt --selection random \
    --out $OUT/test_kd &
  # the ceiling: the same head, cross-entropy on the labels of all 6000 pool texts (one data seed: the whole pool)
  python -m bench.text --seeds 1 --student-seeds 3 --regimes labelled --workers ${WORKERS:-1} --budgets 6000 \
    --variants ce --selection random --out $OUT/test_ceiling &
  wait
fi
