#!/usr/bin/env bash
# A/B comparison of two gatehouse binaries by proxy CPU time per request (user + sys from
# /proc/PID/stat), interleaved A, B, A, B... so that machine noise hits both alike. Each round
# starts a fresh proxy pinned to CPU 1 (origin and h2load on CPU 0), warms it up, then measures N
# requests. Prints each round and the median of the per-round B/A ratios. Not part of CI.
#
#   bench/ab.sh BIN_A BIN_B                 (ROUNDS=7 N=200000 CONNS=1000 PATH_=/1k)
#   CONNS=50 ROUNDS=9 bench/ab.sh /tmp/gh-old build/release/gatehouse
#   LB_A=round_robin LB_B=least_time bench/ab.sh BIN BIN   (what an algorithm costs)
#   H2=1 CONNS=50 bench/ab.sh A B           h2c prior knowledge, STREAMS=10 per connection
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
A=${1:?binary A}
B=${2:?binary B}
ROUNDS=${ROUNDS:-7}
N=${N:-200000}
CONNS=${CONNS:-1000}
URLPATH=${PATH_:-/1k}
BASE=${PORT_BASE:-19280}
if [[ ${H2:-0} == 1 ]]; then LOAD_MODE=(-m "${STREAMS:-10}"); else LOAD_MODE=(--h1); fi
PROXY=$BASE ADMIN=$((BASE + 1)) ORIGIN=$((BASE + 2)) ORIGIN2=$((BASE + 3))
LB_A=${LB_A:-${LB:-round_robin}}
LB_B=${LB_B:-${LB:-round_robin}}
RUN=$(mktemp -d /tmp/gh-ab.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$RUN"
}
trap cleanup EXIT

origin_conf "$RUN" "$ORIGIN" "$ORIGIN2" >"$RUN/origin.conf"
gatehouse_conf "$PROXY" "$ADMIN" "$ORIGIN" "$ORIGIN2" "$LB_A" >"$RUN/gh-A.yaml"
gatehouse_conf "$PROXY" "$ADMIN" "$ORIGIN" "$ORIGIN2" "$LB_B" >"$RUN/gh-B.yaml"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

ulimit -n 16384 2>/dev/null || true
taskset -c 0 nginx -p "$RUN/" -c "$RUN/origin.conf" >"$RUN/origin.out" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN" "$URLPATH"
HZ=$(getconf CLK_TCK)

one() { # one BIN SIDE -> prints proxy CPU µs per request over N measured requests
    taskset -c 1 "$1" run -c "$RUN/gh-$2.yaml" >"$RUN/gh.log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    wait_port "$PROXY" "$URLPATH"
    timeout 120 taskset -c 0 h2load "${LOAD_MODE[@]}" -n $((N / 4)) -c "$CONNS" "http://127.0.0.1:$PROXY$URLPATH" >/dev/null 2>&1
    local t0
    t0=$(cpu_ticks "$pid")
    timeout 300 taskset -c 0 h2load "${LOAD_MODE[@]}" -n "$N" -c "$CONNS" "http://127.0.0.1:$PROXY$URLPATH" >"$RUN/h2load" 2>&1
    local t1
    t1=$(cpu_ticks "$pid")
    grep -q "$N succeeded" "$RUN/h2load" || { cat "$RUN/h2load" >&2; return 1; }
    kill -TERM "$pid"
    wait "$pid" || true
    awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v n="$N" 'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}'
}

echo "A=$A ($LB_A) B=$B ($LB_B) rounds=$ROUNDS N=$N conns=$CONNS path=$URLPATH h2=${H2:-0}"
ratios=()
for r in $(seq 1 "$ROUNDS"); do
    a=$(one "$A" A)
    b=$(one "$B" B)
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')
    ratios+=("$ratio")
    echo "round $r: A $a us/req  B $b us/req  B/A $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n |
    awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
         printf "median B/A: %.3f (min %.3f, max %.3f)\n", m, v[1], v[NR]}'
