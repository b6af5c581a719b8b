#!/usr/bin/env bash
# The AG News demo end to end through the project's one pipeline (the root dvc.yaml): start the STAND-IN LLM
# server (a TF-IDF classifier trained on the pool, not a language model) at teacher.url, run `dvc repro` at the
# root with this folder's params.yaml in place of the root's, copy the metrics here, print the summary, stop the
# server and put the root's params.yaml back (DVC's run cache restores the default demo's outputs on its next
# `dvc repro`). With a real teacher (teacher.url at a provider, or a vLLM / llama.cpp server): CKD_NO_STANDIN=1.
# Needs the extras `text` and `llm` (pip install -e '.[text,llm]'; `make install-test` has them).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
BACKUP=.params.yaml.before-ag-news
[ -e "$BACKUP" ] && mv -f "$BACKUP" params.yaml   # an interrupted run left the root's params aside
cp params.yaml "$BACKUP"
SERVER=""
trap 'mv -f "$BACKUP" params.yaml; [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true' EXIT
mkdir -p "$HERE/metrics"
cp "$HERE/params.yaml" params.yaml
dvc repro download   # the data first: the stand-in server below reads it too
if [ -z "${CKD_NO_STANDIN:-}" ]; then
  python -m examples.ag_news.llm_server --params "$HERE/params.yaml" --report "$HERE/metrics/standin_llm.json" \
    > "$HERE/metrics/standin_llm.log" 2>&1 &
  SERVER=$!
  URL=$(python -c "import yaml; print(yaml.safe_load(open('$HERE/params.yaml'))['teacher']['url'].rstrip('/'))")
  for _ in $(seq 1 600); do
    curl -sf "$URL/models" >/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$HERE/metrics/standin_llm.log"; exit 1; }
    sleep 1
  done
fi
dvc repro "$@"
cp metrics/{embed,sample,query,check,build,export,validate}.json "$HERE/metrics/"
rm -rf "$HERE/metrics/train" && cp -r metrics/train "$HERE/metrics/train"
python -m ckd.summary metrics/validate.json "$HERE/params.yaml" | tee "$HERE/metrics/summary.txt"   # docs/text.md includes it
if [ -n "$SERVER" ]; then
  python -c "import json; print('stand-in LLM teacher test accuracy: %.4f (no budget spent: measured in-process)' % json.load(open('$HERE/metrics/standin_llm.json'))['standin_llm_test_accuracy'])" \
    | tee -a "$HERE/metrics/summary.txt"
fi
