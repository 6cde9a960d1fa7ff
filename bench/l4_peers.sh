#!/usr/bin/env bash
# L4 (TCP) proxies side by side: gatehouse `mode: tcp` (splice), HAProxy 2.6 `mode tcp` (default,
# and with `option splice-request` + `splice-response`) and the NGINX `stream` module, each with
# one worker pinned to CPU 1, in front of one nginx origin on two ports (CPU 0, with wrk).
# Interleaved rounds, the case order rotating each round; a fresh proxy per case and round.
# Not part of CI.
#   conn   - connection rate: wrk -c50 with `Connection: close`, each connection a POST of
#            1 KiB answered by 1 KiB, then closed by the origin (connect, 1 KiB each way, close);
#   stream - throughput over 64 long connections: keep-alive GETs of a 1 MiB file.
# Proxy CPU is utime + stime from /proc/PID/stat over the wrk run; per connection for conn, per
# GB (wrk's bytes read) for stream. Prints each round, then the medians and ratios.
#   bench/l4_peers.sh                      ROUNDS=5 SECS=5 CASES="gatehouse haproxy haproxy-splice nginx"
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
CASES=(${CASES:-gatehouse haproxy haproxy-splice nginx})
BIN=${GATEHOUSE_BIN:-$PWD/build/release/gatehouse}
BASE=${PORT_BASE:-19380}
PROXY=$BASE ADMIN=$((BASE + 1)) ORIGIN=$((BASE + 2)) ORIGIN2=$((BASE + 3)) PROBE=$((BASE + 4))
STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
[[ -f $STREAM_MODULE ]] || { echo "needs libnginx-mod-stream (GATEHOUSE_BENCH_DEPS=1 scripts/bootstrap)" >&2; exit 1; }
RUN=$(mktemp -d /tmp/gh-l4peers.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n ${KEEP:-} ]] || rm -rf "$RUN"
}
trap cleanup EXIT
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

mkdir -p "$RUN/www"
head -c 1048576 /dev/urandom >"$RUN/www/1m"
head -c 1024 /dev/zero | tr '\0' 'a' >"$RUN/body1k"
cat >"$RUN/origin.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $RUN/origin.pid;
error_log $RUN/origin.err warn; worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s; sendfile on;
  client_body_temp_path $RUN/b; proxy_temp_path $RUN/p; fastcgi_temp_path $RUN/f;
  uwsgi_temp_path $RUN/u; scgi_temp_path $RUN/s; client_body_buffer_size 16k;
  server { listen 127.0.0.1:$ORIGIN; listen 127.0.0.1:$ORIGIN2;
           location = /1k { return 200 "$(cat "$RUN/body1k")"; }
           location = /1m { root $RUN/www; } }
}
CONF
cat >"$RUN/post1k.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("b", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Connection"] = "close"
LUA
cat >"$RUN/gatehouse.yaml" <<CONF
workers: 1
watch: false
access_log: {enabled: false}
admin: {address: 127.0.0.1, port: $ADMIN}
clusters:
  - {name: origins, lb: round_robin, endpoints: ["127.0.0.1:$ORIGIN", "127.0.0.1:$ORIGIN2"]}
listeners:
  - {name: probe, address: 127.0.0.1, port: $PROBE}
  - {name: l4, address: 127.0.0.1, port: $PROXY, mode: tcp,
     tcp: {cluster: origins, idle_timeout: 60s, connect_timeout: 5s}}
CONF
haproxy_conf() { # haproxy_conf EXTRA_DEFAULTS_LINE
    cat <<CONF
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    maxconn 4000
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    $1
frontend fe
    bind 127.0.0.1:$PROXY
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:$ORIGIN
    server s2 127.0.0.1:$ORIGIN2
CONF
}
haproxy_conf "" >"$RUN/haproxy.cfg"
haproxy_conf "option splice-request
    option splice-response" >"$RUN/haproxy-splice.cfg"
cat >"$RUN/nginx-stream.conf" <<CONF
load_module $STREAM_MODULE;
worker_processes 1; daemon off; master_process off; pid $RUN/stream.pid;
error_log $RUN/stream.err warn; worker_rlimit_nofile 16384;
events { worker_connections 8192; }
stream {
  upstream origins { server 127.0.0.1:$ORIGIN; server 127.0.0.1:$ORIGIN2; }
  server { listen 127.0.0.1:$PROXY; proxy_pass origins; proxy_connect_timeout 5s; proxy_timeout 60s; }
}
CONF

start_case() { # start_case CASE -> pid on stdout
    case $1 in
        gatehouse) taskset -c 1 "$BIN" run -c "$RUN/gatehouse.yaml" >"$RUN/proxy.log" 2>&1 & ;;
        haproxy) taskset -c 1 haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/proxy.log" 2>&1 & ;;
        haproxy-splice) taskset -c 1 haproxy -db -f "$RUN/haproxy-splice.cfg" >"$RUN/proxy.log" 2>&1 & ;;
        nginx) taskset -c 1 nginx -p "$RUN/" -c "$RUN/nginx-stream.conf" >"$RUN/proxy.log" 2>&1 & ;;
        *) echo "unknown case $1" >&2; return 1 ;;
    esac
    echo $!
}

# measure PID -- WRK_ARGS...: "<cpu seconds> <wrk output file>"
measure() {
    local pid=$1
    shift 2
    local t0 t1
    t0=$(cpu_ticks "$pid")
    timeout $((SECS + 60)) taskset -c 0 wrk "$@" >"$RUN/wrk.out" 2>&1
    t1=$(cpu_ticks "$pid")
    awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN {printf "%.4f", (b - a) / hz}'
}
wrk_bytes() { # "N requests in Xs, 1.23GB read"
    awk '/requests in/ {v = $5; u = substr(v, length(v) - 1); n = substr(v, 1, length(v) - 2);
        m = (u == "GB") ? 1e9 * 1.073741824 : (u == "MB") ? 1048576 : (u == "KB") ? 1024 : 1;
        printf "%.0f", n * m}' "$RUN/wrk.out"
}

ulimit -n 16384 2>/dev/null || true
taskset -c 0 nginx -p "$RUN/" -c "$RUN/origin.conf" >"$RUN/origin.out" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN" /1k
printf 'round\tcase\tconn_per_s\tconn_cpu_us\tconn_p50\tconn_p99\tstream_gbps\tstream_cpu_s_per_gb\terrors\n' >"$RUN/raw.tsv"
echo "rounds=$ROUNDS secs=$SECS cases=${CASES[*]}"
n=${#CASES[@]}
for r in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        c=${CASES[$(((i + r) % n))]}
        pid=$(start_case "$c")
        PIDS+=($pid)
        wait_port "$PROXY" /1k
        taskset -c 0 wrk -t1 -c50 -d1s -s "$RUN/post1k.lua" "http://127.0.0.1:$PROXY/1k" >/dev/null 2>&1
        cpu=$(measure "$pid" -- -t1 -c50 -d"${SECS}s" --latency -s "$RUN/post1k.lua" "http://127.0.0.1:$PROXY/1k")
        reqs=$(wrk_requests)
        errs=$(wrk_errors)
        p50=$(wrk_pct 50%) p99=$(wrk_pct 99%)
        conn_us=$(awk -v c="$cpu" -v n="$reqs" 'BEGIN {printf "%.1f", c * 1e6 / n}')
        conn_rate=$(awk -v s="$SECS" -v n="$reqs" 'BEGIN {printf "%.0f", n / s}')
        cpu=$(measure "$pid" -- -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$PROXY/1m")
        bytes=$(wrk_bytes)
        errs="$errs$(wrk_errors)"
        per_gb=$(awk -v c="$cpu" -v b="$bytes" 'BEGIN {printf "%.3f", c / (b / 1e9)}')
        gbps=$(awk -v s="$SECS" -v b="$bytes" 'BEGIN {printf "%.2f", b / 1e9 / s}')
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$conn_rate" "$conn_us" "$p50" "$p99" \
            "$gbps" "$per_gb" "${errs:-0}" | tee -a "$RUN/raw.tsv"
    done
done
/usr/bin/python3 - "$RUN/raw.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cases = list(dict.fromkeys(r["case"] for r in rows))
def to_ms(v):
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[:-len(unit)]) * scale
    return float("nan")
def med(case, col, conv=float):
    return statistics.median(conv(r[col]) for r in rows if r["case"] == case)
print("\n| case | conn/s | CPU µs/conn | p50 ms | p99 ms | stream GB/s | CPU s/GB |")
print("|---|---|---|---|---|---|---|")
for c in cases:
    print(f"| {c} | {med(c, 'conn_per_s'):.0f} | {med(c, 'conn_cpu_us'):.1f} | "
          f"{med(c, 'conn_p50', to_ms):.2f} | {med(c, 'conn_p99', to_ms):.2f} | "
          f"{med(c, 'stream_gbps'):.2f} | {med(c, 'stream_cpu_s_per_gb'):.3f} |")
if "gatehouse" in cases:
    print("\nmedian of per-round ratios, gatehouse / peer (lower is better):")
    for c in cases:
        if c == "gatehouse":
            continue
        for col in ("conn_cpu_us", "stream_cpu_s_per_gb"):
            ratios = []
            for r in sorted({r["round"] for r in rows}):
                g = [float(x[col]) for x in rows if x["round"] == r and x["case"] == "gatehouse"]
                p = [float(x[col]) for x in rows if x["round"] == r and x["case"] == c]
                if g and p and p[0] > 0:
                    ratios.append(g[0] / p[0])
            if ratios:
                print(f"  {col:22} vs {c:15}: {statistics.median(ratios):.3f} "
                      f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
PY
cp "$RUN/raw.tsv" "${OUT:-/tmp/l4_peers.tsv}"
echo "raw rounds: ${OUT:-/tmp/l4_peers.tsv}"
