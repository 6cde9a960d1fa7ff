#!/usr/bin/env bash
# Runs every fuzz target (build/fuzz, clang-14 libFuzzer) for SECONDS each (default 600) on a
# scratch copy of its seed corpus, JOBS targets at a time (default 1). A crash input is copied
# into fuzz/corpus/<target>/ (CI replays it from then on) and the run goes on with the next
# target; the summary lists each target's executions and result. Not part of CI.
#   fuzz/run_long.sh                      all targets, 10 minutes each
#   SECONDS_EACH=60 fuzz/run_long.sh jwt chunked
set -uo pipefail
cd "$(dirname "$0")/.."
EACH=${SECONDS_EACH:-600}
[[ -x build/fuzz/jwt_fuzz ]] || CXX=clang++-14 scripts/build fuzz >/dev/null
OUT=$(mktemp -d /tmp/gh-fuzz.XXXXXX)
targets=("$@")
if [[ ${#targets[@]} == 0 ]]; then
  for bin in build/fuzz/*_fuzz; do targets+=("$(basename "$bin" _fuzz)"); done
fi
status=0
for name in "${targets[@]}"; do
  bin=build/fuzz/${name}_fuzz
  work=$OUT/$name
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -r fuzz/corpus/"$name"/. "$work/corpus/" 2>/dev/null
  dict=()
  [[ -f fuzz/$name.dict ]] && dict=(-dict="fuzz/$name.dict")
  timeout $((EACH + 120)) "$bin" "$work/corpus" "${dict[@]}" -max_total_time="$EACH" \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 >"$work/log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$')
  crashes=$(ls "$work/artifacts" | wc -l)
  if [[ $rc != 0 || $crashes != 0 ]]; then
    status=1
    cp "$work"/artifacts/* fuzz/corpus/"$name"/ 2>/dev/null
    echo "$name: FOUND (exit $rc, $crashes inputs kept in fuzz/corpus/$name; log $work/log)"
  else
    echo "$name: ok, ${execs:-?} executions in ${EACH}s"
  fi
done
exit $status
