#!/usr/bin/env bash
# A/B comparison of two gatehouse binaries by proxy CPU time per request (user + sys from
# /proc/PID/stat), interleaved A, B, A, B... so that machine noise hits both alike. Each round
# starts a fresh proxy pinned to CPU 1 (origin and h2load on CPU 0), warms it up, then measures N
# requests. Prints each round and the median of the per-round B/A ratios. Not part of CI.
#
#   bench/ab.sh BIN_A BIN_B                 (ROUNDS=7 N=200000 CONNS=1000 PATH_=/1k)
#   CONNS=50 ROUNDS=9 bench/ab.sh /tmp/gh-old build/release/gatehouse
#   LB_A=round_robin LB_B=least_time bench/ab.sh BIN BIN   (what an algorithm costs)
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?binary A}
B=${2:?binary B}
ROUNDS=${ROUNDS:-7}
N=${N:-200000}
CONNS=${CONNS:-1000}
URLPATH=${PATH_:-/1k}
BASE=${PORT_BASE:-19280}
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

body=$(head -c 1024 /dev/zero | tr '\0' 'a')
cat >"$RUN/origin.conf" <<EOF
worker_processes 1; daemon off; master_process off; pid $RUN/origin.pid;
error_log $RUN/origin.err warn; worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path $RUN/b; proxy_temp_path $RUN/p; fastcgi_temp_path $RUN/f;
  uwsgi_temp_path $RUN/u; scgi_temp_path $RUN/s;
  server { listen 127.0.0.1:$ORIGIN; listen 127.0.0.1:$ORIGIN2; location = /1k { return 200 "$body"; }
           location = /10k { set \$k "$body"; return 200 "\$k\$k\$k\$k\$k\$k\$k\$k\$k\$k"; } }
}
EOF
for side in A B; do
lbvar=LB_$side
cat >"$RUN/gh-$side.yaml" <<EOF
workers: 1
watch: false
listeners: [{name: bench, address: 127.0.0.1, port: $PROXY}]
admin: {enabled: true, address: 127.0.0.1, port: $ADMIN}
access_log: {enabled: false}
timeouts: {keepalive_idle: 300s, upstream_idle: 300s}
clusters:
  - {name: origins, lb: ${!lbvar}, pool_max_per_endpoint: 4096, pool_max_idle_per_endpoint: 2048,
     endpoints: ["127.0.0.1:$ORIGIN", "127.0.0.1:$ORIGIN2"]}
routes: [{name: all, match: {path_prefix: /}, cluster: origins}]
EOF
done

wait_port() {
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "http://127.0.0.1:$1$2" && return 0
        sleep 0.1
    done
    echo "port $1 did not come up" >&2
    return 1
}
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
    timeout 120 taskset -c 0 h2load --h1 -n $((N / 4)) -c "$CONNS" "http://127.0.0.1:$PROXY$URLPATH" >/dev/null 2>&1
    local t0
    t0=$(cpu_ticks "$pid")
    timeout 300 taskset -c 0 h2load --h1 -n "$N" -c "$CONNS" "http://127.0.0.1:$PROXY$URLPATH" >"$RUN/h2load" 2>&1
    local t1
    t1=$(cpu_ticks "$pid")
    grep -q "$N succeeded" "$RUN/h2load" || { cat "$RUN/h2load" >&2; return 1; }
    kill -TERM "$pid"
    wait "$pid" || true
    awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v n="$N" 'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}'
}

echo "A=$A ($LB_A) B=$B ($LB_B) rounds=$ROUNDS N=$N conns=$CONNS path=$URLPATH"
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
