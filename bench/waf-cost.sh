#!/usr/bin/env bash
# What the `waf` policy (ModSecurity + OWASP CRS) costs per request: the CPU time the gatehouse
# process spends per request (all its threads, from /proc/PID/task/*/schedstat, nanosecond
# resolution) on a clean request and on an attack request, plain and with the policy at paranoia
# levels 1 and 2. CPU time, not wall clock, so other load on the machine matters less. One
# worker, one nginx origin (bench/lib.sh), h2load over keep-alive HTTP/1.1; every process is
# stopped by PID and every step is bounded in time. Prints the median of REPS interleaved runs.
#   bench/waf-cost.sh [BIN] [N]        (defaults: build/release/gatehouse, 3000)
#   REPS=7 CONNS=10 bench/waf-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BIN=${1:-build/release/gatehouse}
N=${2:-3000}
REPS=${REPS:-5}
CONNS=${CONNS:-10}
BASE=${PORT_BASE:-19280}
PROXY=$BASE ADMIN=$((BASE + 1)) ORIGIN=$((BASE + 2)) ORIGIN2=$((BASE + 3))
RUN=$(mktemp -d /tmp/gh-waf-cost.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$RUN"
}
trap cleanup EXIT

CLEAN='/1k?id=42&name=Ann%20O%27Brien&since=2026-12-07T10:00:00Z'
ATTACK='/1k?id=1%27%20OR%20%271%27%3D%271'
declare -A POLICIES=(
    [plain]=''
    [waf-pl1]='[{name: waf, config: {paranoia_level: 1}}]'
    [waf-pl2]='[{name: waf, config: {paranoia_level: 2}}]'
)
CASES=(plain waf-pl1 waf-pl2)

origin_conf "$RUN" "$ORIGIN" "$ORIGIN2" >"$RUN/origin.conf"
nginx -p "$RUN/" -c "$RUN/origin.conf" >"$RUN/origin.out" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN" /1k

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d\n", s}'; }

# measure CASE PATH -> CPU ns per request of the gatehouse process
measure() {
    ROUTE_POLICIES=${POLICIES[$1]} gatehouse_conf "$PROXY" "$ADMIN" "$ORIGIN" "$ORIGIN2" \
        round_robin >"$RUN/gh.yaml"
    "$BIN" run -c "$RUN/gh.yaml" >"$RUN/gh.log" 2>&1 &  # its own PID: CPU is read from /proc
    local pid=$!
    PIDS+=("$pid")
    wait_port "$PROXY" /1k
    local url="http://127.0.0.1:$PROXY$2"
    timeout 120 h2load --h1 -n 300 -c "$CONNS" "$url" >/dev/null 2>&1  # warm-up
    local a b
    a=$(cpu_ns "$pid")
    timeout 200 h2load --h1 -n "$N" -c "$CONNS" "$url" >"$RUN/h2load.out" 2>&1
    b=$(cpu_ns "$pid")
    grep -q "$N done" "$RUN/h2load.out" || { cat "$RUN/h2load.out" >&2; kill "$pid"; return 1; }
    kill -TERM "$pid"
    wait "$pid" || true
    echo $(((b - a) / N))
}

for rep in $(seq "$REPS"); do
    for c in "${CASES[@]}"; do
        for req in clean attack; do
            path=$CLEAN
            [[ $req == attack ]] && path=$ATTACK
            echo "$c $req $(measure "$c" "$path")" >>"$RUN/results"
        done
    done
    echo "rep $rep done" >&2
done

echo "gatehouse CPU per request (µs), median of $REPS runs of $N requests, $CONNS connections:"
echo "| case | clean request | attack request (SQLi in the query) |"
echo "|---|---|---|"
for c in "${CASES[@]}"; do
    row="| $c |"
    for req in clean attack; do
        med=$(awk -v c="$c" -v r="$req" '$1 == c && $2 == r {print $3}' "$RUN/results" | sort -n |
              awk '{v[NR] = $1} END {printf "%.1f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 1000}')
        row="$row $med |"
    done
    echo "$row"
done
