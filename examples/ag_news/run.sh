#!/usr/bin/env bash
# The AG News demo end to end: start the STAND-IN LLM server (a TF-IDF classifier trained on the pool, not a
# language model) at teacher.url, run the text pipeline with DVC, print the summary, stop the server.
# With a real teacher (teacher.url at a provider, or a vLLM / llama.cpp server), run `dvc repro` here instead.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
mkdir -p metrics
dvc repro download   # the data first: the stand-in server below reads it too
python -m ckd.bench.llm_server --params params.yaml --report metrics/standin_llm.json > metrics/standin_llm.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
URL=$(python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['teacher']['url'].rstrip('/'))")
for _ in $(seq 1 600); do
  curl -sf "$URL/models" >/dev/null && break
  kill -0 $SERVER 2>/dev/null || { cat metrics/standin_llm.log; exit 1; }
  sleep 1
done
dvc repro "$@"
python -m ckd.summary metrics/validate_text.json
python -c "import json; print('stand-in LLM teacher test accuracy: %.4f (no budget spent: measured in-process)' % json.load(open('metrics/standin_llm.json'))['standin_llm_test_accuracy'])"
