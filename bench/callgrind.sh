#!/usr/bin/env bash
# Instructions per proxied HTTP/1.1 request, measured with callgrind (deterministic, unlike
# wall-clock numbers on this noisy machine). Starts one nginx origin and gatehouse (1 worker)
# under callgrind, drives N and 2N keep-alive requests with h2load --h1 and reports
# (Ir(2N) - Ir(N)) / N, which subtracts startup and shutdown. Every process it starts is
# stopped by PID; every step is bounded in time.
#
#   bench/callgrind.sh [BIN] [N]      (defaults: build/release/gatehouse, 5000)
#   CONNS=50 PATH_=/1k PORT_BASE=19180 bench/callgrind.sh
#   MODE=strace bench/callgrind.sh    syscalls per request instead (strace -c -f, same N/2N diff)
#   MODE=perf bench/callgrind.sh      where the time goes, kernel included (perf cpu-clock
#                                     samples of the 2N run; no hardware counters needed)
#   PERF_CALLGRAPH=1 KEEP=1 MODE=perf ...   also record call graphs (perf report -g on the kept file)
#   CACHESIM=1 KEEP=1 bench/callgrind.sh   also simulate caches (D1/LL misses per function)
#   KEEP=1 bench/callgrind.sh         keep the run directory (profiles for callgrind_annotate)
#   H2=1 bench/callgrind.sh           HTTP/2 (h2c prior knowledge, -m 10 streams) to the proxy
#   LB=least_time bench/callgrind.sh  another balancer (two origin ports instead of one)
#   ROUTE_POLICIES='[{name: lua, config: {file: bench/lua-realistic.lua}}]' bench/callgrind.sh
#                                     policies on the route (a YAML flow list)
#   EXPECT=done PATH_="/1k?id=1'%20OR%20'1'='1" ROUTE_POLICIES='[{name: waf}]' bench/callgrind.sh
#                                     requests the route refuses (403s count as done, not succeeded)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BIN=${1:-build/release/gatehouse}
N=${2:-5000}
CONNS=${CONNS:-50}
URLPATH=${PATH_:-/1k}
BASE=${PORT_BASE:-19180}
if [[ ${H2:-0} == 1 ]]; then H2LOAD_MODE=; STREAMS=${STREAMS:-10}; else H2LOAD_MODE=--h1; STREAMS=1; fi
PROXY=$BASE ADMIN=$((BASE + 1)) ORIGIN=$((BASE + 2)) ORIGIN2=$((BASE + 3))
LB=${LB:-round_robin}
RUN=$(mktemp -d /tmp/gh-callgrind.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$RUN"
}
trap cleanup EXIT

origin_conf "$RUN" "$ORIGIN" "$ORIGIN2" >"$RUN/origin.conf"
gatehouse_conf "$PROXY" "$ADMIN" "$ORIGIN" "$ORIGIN2" "$LB" >"$RUN/gh.yaml"


nginx -p "$RUN/" -c "$RUN/origin.conf" >"$RUN/origin.out" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN" "$URLPATH"

MODE=${MODE:-callgrind}
measure() { # measure REQUESTS -> prints total Ir (or syscalls) of the gatehouse process
    local n=$1 out="$RUN/$MODE.$1"
    if [[ $MODE == strace ]]; then
        timeout 300 strace -f -c -o "$out" "$BIN" run -c "$RUN/gh.yaml" >"$RUN/gh.$n.log" 2>&1 &
    elif [[ $MODE == perf ]]; then
        timeout 300 perf record -q -e cpu-clock -F 4000 ${PERF_CALLGRAPH:+-g} -o "$out" \
            "$BIN" run -c "$RUN/gh.yaml" >"$RUN/gh.$n.log" 2>&1 &
    else
        timeout 300 valgrind --tool=callgrind ${CACHESIM:+--cache-sim=yes} --callgrind-out-file="$out" \
            "$BIN" run -c "$RUN/gh.yaml" >"$RUN/gh.$n.log" 2>&1 &
    fi
    local vpid=$!
    wait_port "$PROXY" "$URLPATH"
    timeout 200 h2load $H2LOAD_MODE -n "$n" -c "$CONNS" -m "$STREAMS" "http://127.0.0.1:$PROXY$URLPATH" \
        >"$RUN/h2load.$n" 2>&1
    grep -q "$n ${EXPECT:-succeeded}" "$RUN/h2load.$n" || { cat "$RUN/h2load.$n" >&2; return 1; }
    kill -TERM "$vpid"
    wait "$vpid" || true
    if [[ $MODE == perf ]]; then
        :
    elif [[ $MODE == strace ]]; then
        # "calls" is column 4; the errors column may be empty, so take the name as the last field
        awk 'NR > 2 && $1 ~ /^[0-9.]+$/ && $NF != "total" {print $NF, $4}' "$out" | sort
    else
        grep '^summary:' "$out" | awk '{print $2}'
    fi
}

if [[ $MODE == strace ]]; then
    measure "$N" >"$RUN/sys.a"
    measure $((2 * N)) >"$RUN/sys.b"
    echo "syscalls per request ($URLPATH, $CONNS conns), from the 2N - N difference:"
    join -a 2 -e 0 -o 0,1.2,2.2 "$RUN/sys.a" "$RUN/sys.b" |
        awk -v n="$N" '{d = ($3 - $2) / n; if (d >= 0.01) {printf "  %-16s %.2f\n", $1, d; t += d}}
                       END {printf "  %-16s %.2f\n", "total", t}'
    exit 0
fi
if [[ $MODE == perf ]]; then
    measure $((2 * N))
    perf report -i "$RUN/perf.$((2 * N))" --no-children --sort dso,symbol --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//' | head -"${TOP:-40}"
    exit 0
fi
a=$(measure "$N")
b=$(measure $((2 * N)))
echo "Ir total: N=$N -> $a, 2N -> $b"
echo "Ir/request ($URLPATH, $CONNS conns): $(((b - a) / N))"
if [[ ${KEEP:-0} == 1 ]]; then
    echo "profile of the 2N run: callgrind_annotate $RUN/callgrind.$((2 * N))"
else
    echo "(KEEP=1 keeps $RUN with the callgrind profiles)"
fi
