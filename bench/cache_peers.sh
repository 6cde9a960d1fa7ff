#!/usr/bin/env bash
# The cache-hit path side by side: gatehouse's `cache` policy, Varnish 7.1 (malloc storage) and
# NGINX `proxy_cache` (its usual file cache, served from the page cache), each pinned to CPU 1,
# in front of one nginx origin on two ports that marks /1k and /100k `max-age=3600` (CPU 0,
# with wrk). Every case is warmed until both objects are stored, then wrk runs GETs for one
# object; the origin's request count over the run proves they were hits. Interleaved rounds,
# the case order rotating each round; a fresh proxy (and an empty cache) per case and round.
# Proxy CPU is utime + stime of the proxy's whole process tree (Varnish's manager and child)
# from /proc over the wrk run, per request. Not part of CI.
# The case `gatehouse-gzip` lists `cache` before `compress` and sends `Accept-Encoding: gzip`:
# the stored entry is the gzip-coded one (one entry per coding), so a hit costs no compression.
#   bench/cache_peers.sh             ROUNDS=5 SECS=5 CASES="gatehouse varnish nginx"
#                                    SCENARIOS="1k-c50 100k-c50 1k-c1000 100k-c1000"
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
CASES=(${CASES:-gatehouse varnish nginx})
SCENARIOS=(${SCENARIOS:-1k-c50 100k-c50 1k-c1000 100k-c1000})
BIN=${GATEHOUSE_BIN:-$PWD/build/release/gatehouse}
BASE=${PORT_BASE:-19420}
PROXY=$BASE ADMIN=$((BASE + 1)) ORIGIN=$((BASE + 2)) ORIGIN2=$((BASE + 3))
command -v varnishd >/dev/null || { echo "needs varnish (GATEHOUSE_BENCH_DEPS=1 scripts/bootstrap)" >&2; exit 1; }
RUN=$(mktemp -d /tmp/gh-cachepeers.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n ${KEEP:-} ]] || rm -rf "$RUN"
}
trap cleanup EXIT
HZ=$(getconf CLK_TCK)
# CPU ticks of PID and every process under it.
cpu_ticks() {
    /usr/bin/python3 - "$1" <<'PY'
import os, sys
stats = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(d)] = (int(f[1]), int(f[11]) + int(f[12]))  # ppid, utime + stime
todo, total = [int(sys.argv[1])], 0
while todo:
    p = todo.pop()
    total += stats.get(p, (0, 0))[1]
    todo += [c for c, (pp, _) in stats.items() if pp == p]
print(total)
PY
}

head -c 1024 /dev/zero | tr '\0' 'a' >"$RUN/1k"
head -c 102400 /dev/zero | tr '\0' 'b' >"$RUN/100k"
cat >"$RUN/origin.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $RUN/origin.pid;
error_log $RUN/origin.err warn; worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log $RUN/origin.access; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path $RUN/b; proxy_temp_path $RUN/p; fastcgi_temp_path $RUN/f;
  uwsgi_temp_path $RUN/u; scgi_temp_path $RUN/s; sendfile on; default_type text/plain;
  server { listen 127.0.0.1:$ORIGIN; listen 127.0.0.1:$ORIGIN2; root $RUN;
           location / { add_header Cache-Control "max-age=3600"; } }
}
CONF
cat >"$RUN/gatehouse.yaml" <<CONF
workers: 1
watch: false
access_log: {enabled: false}
admin: {address: 127.0.0.1, port: $ADMIN}
timeouts: {keepalive_idle: 300s, upstream_idle: 300s}
listeners: [{name: bench, address: 127.0.0.1, port: $PROXY}]
clusters:
  - {name: origins, lb: round_robin, endpoints: ["127.0.0.1:$ORIGIN", "127.0.0.1:$ORIGIN2"]}
routes:
  - name: all
    match: {path_prefix: /}
    cluster: origins
    policies: [{name: cache, config: ${GH_CACHE_CONFIG:-{size: 256MiB\}}}]
CONF
sed 's/policies: \[{name: cache, config: \(.*\)}\]$/policies: [{name: cache, config: \1}, {name: compress, config: {min_size: 0}}]/' \
    "$RUN/gatehouse.yaml" >"$RUN/gatehouse-gzip.yaml"
grep -q "name: compress" "$RUN/gatehouse-gzip.yaml" || { echo "gatehouse-gzip config not made" >&2; exit 1; }
cat >"$RUN/varnish.vcl" <<CONF
vcl 4.1;
import directors;
backend o1 { .host = "127.0.0.1"; .port = "$ORIGIN"; }
backend o2 { .host = "127.0.0.1"; .port = "$ORIGIN2"; }
sub vcl_init { new rr = directors.round_robin(); rr.add_backend(o1); rr.add_backend(o2); }
sub vcl_recv { set req.backend_hint = rr.backend(); }
CONF
cat >"$RUN/nginx-cache.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $RUN/cache.pid;
error_log $RUN/cache.err warn; worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path $RUN/cb; proxy_temp_path $RUN/cp; fastcgi_temp_path $RUN/cf;
  uwsgi_temp_path $RUN/cu; scgi_temp_path $RUN/cs;
  proxy_cache_path $RUN/ngx-cache levels=1:2 keys_zone=api:16m max_size=256m use_temp_path=off;
  upstream origins { server 127.0.0.1:$ORIGIN; server 127.0.0.1:$ORIGIN2; keepalive 1024; }
  server { listen 127.0.0.1:$PROXY;
           location / { proxy_pass http://origins; proxy_http_version 1.1;
                        proxy_set_header Connection ""; proxy_cache api; } }
}
CONF

start_case() { # start_case CASE -> pid on stdout
    case $1 in
        gatehouse) taskset -c 1 "$BIN" run -c "$RUN/gatehouse.yaml" >"$RUN/proxy.log" 2>&1 & ;;
        gatehouse-gzip)
            taskset -c 1 "$BIN" run -c "$RUN/gatehouse-gzip.yaml" >"$RUN/proxy.log" 2>&1 & ;;
        varnish)
            rm -rf "$RUN/varnish"
            taskset -c 1 varnishd -F -j none -n "$RUN/varnish" -a "127.0.0.1:$PROXY" \
                -f "$RUN/varnish.vcl" -s malloc,256m -p thread_pools=1 >"$RUN/proxy.log" 2>&1 & ;;
        nginx)
            rm -rf "$RUN/ngx-cache"
            taskset -c 1 nginx -p "$RUN/" -c "$RUN/nginx-cache.conf" >"$RUN/proxy.log" 2>&1 & ;;
        *) echo "unknown case $1" >&2; return 1 ;;
    esac
    echo $!
}
origin_requests() { wc -l <"$RUN/origin.access"; }
# stop_case PID: the proxy and every process under it (Varnish's child outlives a TERMed
# manager for a while and keeps the port), each by PID, then until the port is free (30 s).
stop_case() {
    local pids=($1) i=0
    while ((i < ${#pids[@]})); do
        pids+=($(ps -o pid= --ppid "${pids[$i]}" 2>/dev/null || true))
        i=$((i + 1))
    done
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for _ in $(seq 1 300); do
        ss -ltn "sport = :$PROXY" | grep -q LISTEN || return 0
        sleep 0.1
    done
    echo "port $PROXY still taken after stopping $1" >&2
    return 1
}
# warm PATH: until two GETs in a row reach the proxy but not the origin (30 s at most).
warm() {
    for _ in $(seq 1 300); do
        local before
        before=$(origin_requests)
        curl -s -o /dev/null "${HDR[@]}" "http://127.0.0.1:$PROXY$1"
        curl -s -o /dev/null "${HDR[@]}" "http://127.0.0.1:$PROXY$1"
        [[ $(origin_requests) == "$before" ]] && return 0
        sleep 0.1
    done
    echo "$1 was never served from the cache" >&2
    return 1
}

ulimit -n 16384 2>/dev/null || true
touch "$RUN/origin.access"
taskset -c 0 nginx -p "$RUN/" -c "$RUN/origin.conf" >"$RUN/origin.out" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN" /1k
printf 'round\tscenario\tcase\treq_per_s\tcpu_us\tp50\tp99\torigin_reqs\terrors\n' >"$RUN/raw.tsv"
echo "rounds=$ROUNDS secs=$SECS cases=${CASES[*]} scenarios=${SCENARIOS[*]}"
n=${#CASES[@]}
for r in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        c=${CASES[$(((i + r) % n))]}
        pid=$(start_case "$c")
        PIDS+=($pid)
        HDR=()
        [[ $c == gatehouse-gzip ]] && HDR=(-H "Accept-Encoding: gzip")
        wait_port "$PROXY" /1k
        warm /1k
        warm /100k
        for s in "${SCENARIOS[@]}"; do
            path=/${s%%-*} conns=${s##*-c}
            taskset -c 0 wrk -t1 -c"$conns" -d1s "${HDR[@]}" "http://127.0.0.1:$PROXY$path" >/dev/null 2>&1
            o0=$(origin_requests) t0=$(cpu_ticks "$pid")
            timeout $((SECS + 60)) taskset -c 0 wrk -t1 -c"$conns" -d"${SECS}s" --latency "${HDR[@]}" \
                "http://127.0.0.1:$PROXY$path" >"$RUN/wrk.out" 2>&1
            t1=$(cpu_ticks "$pid") o1=$(origin_requests)
            reqs=$(wrk_requests)
            cpu_us=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v n="$reqs" \
                'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}')
            rate=$(awk -v s="$SECS" -v n="$reqs" 'BEGIN {printf "%.0f", n / s}')
            errs=$(wrk_errors)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$c" "$rate" "$cpu_us" \
                "$(wrk_pct 50%)" "$(wrk_pct 99%)" "$((o1 - o0))" "${errs:-0}" | tee -a "$RUN/raw.tsv"
        done
        stop_case "$pid"
    done
done
/usr/bin/python3 - "$RUN/raw.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cases = list(dict.fromkeys(r["case"] for r in rows))
scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
def to_ms(v):
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[:-len(unit)]) * scale
    return float("nan")
def pick(s, c):
    return [r for r in rows if r["scenario"] == s and r["case"] == c]
print("\n| scenario | case | req/s | CPU µs/hit | p50 ms | p99 ms | origin requests |")
print("|---|---|---|---|---|---|---|")
for s in scenarios:
    for c in cases:
        rs = pick(s, c)
        print(f"| {s} | {c} | {statistics.median(float(r['req_per_s']) for r in rs):.0f} | "
              f"{statistics.median(float(r['cpu_us']) for r in rs):.2f} | "
              f"{statistics.median(to_ms(r['p50']) for r in rs):.2f} | "
              f"{statistics.median(to_ms(r['p99']) for r in rs):.2f} | "
              f"{sum(int(r['origin_reqs']) for r in rs)} |")
if "gatehouse" in cases:
    print("\nmedian of per-round ratios of CPU per hit, gatehouse / peer (lower is better):")
    for s in scenarios:
        for c in cases:
            if c == "gatehouse":
                continue
            ratios = []
            for r in sorted({r["round"] for r in rows}):
                g = [float(x["cpu_us"]) for x in pick(s, "gatehouse") if x["round"] == r]
                p = [float(x["cpu_us"]) for x in pick(s, c) if x["round"] == r]
                if g and p and p[0] > 0:
                    ratios.append(g[0] / p[0])
            if ratios:
                print(f"  {s:11} vs {c:8}: {statistics.median(ratios):.3f} "
                      f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
PY
cp "$RUN/raw.tsv" "${OUT:-/tmp/cache_peers.tsv}"
echo "raw rounds: ${OUT:-/tmp/cache_peers.tsv}"
