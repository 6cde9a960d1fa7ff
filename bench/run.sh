#!/usr/bin/env bash
# Runs Gatehouse next to NGINX and HAProxy with the shared harness (../shared/bench), one
# interleaved run, and prints the summary. Not part of CI (it takes ~10-20 minutes).
#   bench/run.sh                      # default scenarios, REPS=3
#   SCENARIOS="1k-c50" REPS=5 bench/run.sh
#   CASES="nginx-ka1024 haproxy gatehouse floor" SCENARIOS="1k-c50 10k-c50 1k-c1000" bench/run.sh
# The `floor` case is bench/floor/floor_proxy.cc (the cheapest proxy doing the same work; HTTP/1.1
# only, so not with h2-1k).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HARNESS="${GATEHOUSE_BENCH_HARNESS:-$ROOT/../shared/bench}"
[ -x "$HARNESS/run.sh" ] || { echo "bench harness not found at $HARNESS" >&2; exit 1; }
GATEHOUSE_BENCH_DEPS=1 scripts/bootstrap
scripts/build release gatehouse gatehouse_floor_proxy
export EXTRA_CASE=gatehouse
export EXTRA_H1="$ROOT/build/release/gatehouse run -c $ROOT/bench/gatehouse-h1.yaml"
# The same listener speaks h2c with prior knowledge (the h2-1k scenario).
export EXTRA_H2="$EXTRA_H1"
export CASES="${CASES:-nginx-ka1024 haproxy gatehouse}"
export SCENARIOS="${SCENARIOS:-1k-c50 10k-c50 1k-c1000 h2-1k}"
export EXTRA_H1_floor="$ROOT/build/release/gatehouse_floor_proxy 8080 9001 9002"
if [[ " $CASES " == *" floor "* && " $SCENARIOS " == *" h2-1k "* ]]; then
    echo "the floor proxy speaks HTTP/1.1 only: drop h2-1k from SCENARIOS or floor from CASES" >&2
    exit 1
fi
export REPS="${REPS:-3}"
export OUT="${OUT:-$ROOT/bench/results/$(date +%Y%m%d-%H%M%S)}"
"$HARNESS/run.sh"
cat "$OUT/summary.md"
echo
echo "Median of per-repetition ratios (bench/ratios.py):"
/usr/bin/python3 "$ROOT/bench/ratios.py" "$OUT/raw.tsv" gatehouse
