#!/usr/bin/env bash
# gRPC unary calls through Gatehouse, NGINX (grpc_pass) and HAProxy (proto h2), side by side,
# against one C++ gRPC echo server (bench/grpc/echo_server.cc). h2load sends gRPC-framed
# requests over h2c (-c CONNS -m STREAMS); the proxy is pinned to CPU 1, the echo server and
# h2load to CPU 0, as in the shared harness. Reported: req/s, and proxy CPU µs per call from
# /proc/PID/stat. Every process is stopped by PID and every step is bounded in time.
#   bench/grpc/run.sh                    REPS=3 N=100000 CONNS=50 STREAMS=10
#   CASES="direct gatehouse" REPS=5 bench/grpc/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
REPS=${REPS:-3}
N=${N:-100000}
CONNS=${CONNS:-50}
STREAMS=${STREAMS:-10}
CASES=${CASES:-"direct nginx haproxy gatehouse"}
ECHO_PORT=${ECHO_PORT:-19301}
PROXY_PORT=${PROXY_PORT:-19302}
ADMIN_PORT=$((PROXY_PORT + 1))
OUT=${OUT:-$ROOT/bench/results/grpc-$(date +%Y%m%d-%H%M%S)}

GATEHOUSE_BENCH_DEPS=1 scripts/bootstrap
scripts/build release gatehouse
mkdir -p build/bench-grpc "$OUT"
ECHO_BIN=build/bench-grpc/grpc_echo
if [[ ! -x $ECHO_BIN || bench/grpc/echo_server.cc -nt $ECHO_BIN ]]; then
    # shellcheck disable=SC2046  # pkg-config output is a list of flags
    g++ -std=c++20 -O2 -Wall -Wextra -Werror -o "$ECHO_BIN" bench/grpc/echo_server.cc \
        $(pkg-config --cflags --libs grpc++)
fi

RUN=$(mktemp -d /tmp/gh-grpc-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$RUN"
}
trap cleanup EXIT

# One unary request: a gRPC frame (uncompressed, 7-byte protobuf message with field 1 = "hello").
printf '\x00\x00\x00\x00\x07\x0a\x05hello' >"$RUN/msg.bin"

cat >"$RUN/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $RUN/nginx.pid;
error_log $RUN/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 10000000;  # h2 too (nginx >= 1.19.7): no GOAWAY mid-run
  client_body_temp_path $RUN/b; proxy_temp_path $RUN/p; fastcgi_temp_path $RUN/f;
  uwsgi_temp_path $RUN/u; scgi_temp_path $RUN/s;
  upstream echo { server 127.0.0.1:$ECHO_PORT; keepalive 64; }
  server { listen 127.0.0.1:$PROXY_PORT http2; location / { grpc_pass grpc://echo; } }
}
CONF
cat >"$RUN/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend grpc
  bind 127.0.0.1:$PROXY_PORT proto h2
  default_backend echo
backend echo
  server s1 127.0.0.1:$ECHO_PORT proto h2
CONF
cat >"$RUN/gatehouse.yaml" <<CONF
workers: 1
watch: false
listeners: [{name: bench, address: 127.0.0.1, port: $PROXY_PORT}]
admin: {enabled: true, address: 127.0.0.1, port: $ADMIN_PORT}
access_log: {enabled: false}
timeouts: {keepalive_idle: 300s, upstream_idle: 300s}
clusters: [{name: echo, protocol: h2c, endpoints: ["127.0.0.1:$ECHO_PORT"]}]
routes: [{name: all, match: {path_prefix: /}, cluster: echo}]
CONF

start_proxy() { # case -> sets PROXY_PID (empty for direct)
    PROXY_PID=
    case $1 in
        direct) return 0 ;;
        nginx) taskset -c 1 nginx -p "$RUN/" -c "$RUN/nginx.conf" >"$RUN/nginx.out" 2>&1 & ;;
        haproxy) taskset -c 1 haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/haproxy.out" 2>&1 & ;;
        gatehouse) taskset -c 1 build/release/gatehouse run -c "$RUN/gatehouse.yaml" \
            >"$RUN/gatehouse.out" 2>&1 & ;;
        *) echo "unknown case $1" >&2; return 1 ;;
    esac
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
}

stop_proxy() {
    [[ -n $PROXY_PID ]] || return 0
    kill "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One echoed call through the target, with grpcio, so a proxy that answers but breaks gRPC is
# caught before it is timed.
check_call() {
    /usr/bin/python3 - "$1" <<'PY'
import sys, time, grpc
deadline = time.time() + 10
while True:
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
        out = ch.unary_unary("/bench.Echo/Call")(b"\x0a\x05hello", timeout=2)
        assert out == b"\x0a\x05hello", out
        break
    except grpc.RpcError:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
PY
}

taskset -c 0 "$ECHO_BIN" "$ECHO_PORT" >"$RUN/echo.out" 2>&1 &
PIDS+=($!)
check_call "$ECHO_PORT"

printf 'case\trep\treq_s\tcpu_us_per_call\n' >"$OUT/raw.tsv"
for rep in $(seq 1 "$REPS"); do
    for c in $CASES; do
        start_proxy "$c"
        port=$PROXY_PORT
        [[ $c == direct ]] && port=$ECHO_PORT
        check_call "$port"
        args=(-c "$CONNS" -m "$STREAMS" -d "$RUN/msg.bin" -H 'content-type: application/grpc'
              -H 'te: trailers' "http://127.0.0.1:$port/bench.Echo/Call")
        timeout -k 5 60 taskset -c 0 h2load -t1 -n 5000 "${args[@]}" >/dev/null 2>&1
        before=0
        [[ -n $PROXY_PID ]] && before=$(cpu_ticks "$PROXY_PID")
        timeout -k 5 180 taskset -c 0 h2load -t1 -n "$N" "${args[@]}" >"$RUN/h2load.out" 2>&1
        after=0
        [[ -n $PROXY_PID ]] && after=$(cpu_ticks "$PROXY_PID")
        grep -q "$N succeeded" "$RUN/h2load.out" || { cat "$RUN/h2load.out" >&2; exit 1; }
        rps=$(awk '/^finished in/ {print $4}' "$RUN/h2load.out")
        tck=$(getconf CLK_TCK)
        cpu=$(awk -v t=$((after - before)) -v n="$N" -v k="$tck" 'BEGIN {printf "%.2f", t * 1e6 / k / n}')
        printf '%s\t%s\t%s\t%s\n' "$c" "$rep" "$rps" "$cpu" | tee -a "$OUT/raw.tsv"
        stop_proxy
    done
done

/usr/bin/python3 - "$OUT/raw.tsv" "$CONNS" "$STREAMS" >"$OUT/summary.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cases = list(dict.fromkeys(r["case"] for r in rows))
med = {}
for c in cases:
    rs = [float(r["req_s"]) for r in rows if r["case"] == c]
    cpu = [float(r["cpu_us_per_call"]) for r in rows if r["case"] == c]
    med[c] = (statistics.median(rs), statistics.median(cpu), min(rs), max(rs))
print(f"gRPC unary, h2c, -c {sys.argv[2]} -m {sys.argv[3]}; medians of {len(rows) // len(cases)}")
print()
print("| case | req/s | (min-max) | proxy CPU µs/call |")
print("|---|---|---|---|")
for c in cases:
    r, u, lo, hi = med[c]
    print(f"| {c} | {r:,.0f} | {lo:,.0f}-{hi:,.0f} | {'-' if c == 'direct' else f'{u:.2f}'} |")
if "gatehouse" in med:
    g = med["gatehouse"]
    for peer in ("nginx", "haproxy"):
        if peer in med:
            p = med[peer]
            print(f"\ngatehouse vs {peer}: {g[0] / p[0]:.2f}x req/s, {g[1] / p[1]:.2f}x CPU/call")
PY
cat "$OUT/summary.md"
