# Shared by the bench scripts (sourced): the origin and gatehouse configs of
# the single-process measurements, and a bounded wait for a port to answer.

# origin_conf RUN ORIGIN ORIGIN2 > file: one nginx worker answering /1k and /10k on two ports.
origin_conf() {
    local run=$1 body
    body=$(head -c 1024 /dev/zero | tr '\0' 'a')
    cat <<CONF
worker_processes 1; daemon off; master_process off; pid $run/origin.pid;
error_log $run/origin.err warn; worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path $run/b; proxy_temp_path $run/p; fastcgi_temp_path $run/f;
  uwsgi_temp_path $run/u; scgi_temp_path $run/s;
  server { listen 127.0.0.1:$2; listen 127.0.0.1:$3; location = /1k { return 200 "$body"; }
           location = /v1/traces { client_max_body_size 64m; return 200; }
           location = /10k { set \$k "$body"; return 200 "\$k\$k\$k\$k\$k\$k\$k\$k\$k\$k"; } }
}
CONF
}

# gatehouse_conf PROXY ADMIN ORIGIN ORIGIN2 LB > file: one worker, no access log, round robin
# (or LB) over the two origin ports with a pool large enough for 1000 connections. ROUTE_POLICIES
# (a YAML flow list) puts policies on the route. TRACE_RATIO (0..1) turns tracing on at that
# sample ratio, exporting to the origin's /v1/traces (nginx answers 200 and drops the body).
gatehouse_conf() {
    local tracing=""
    [[ -n ${TRACE_RATIO:-} ]] &&
        tracing="tracing: {endpoint: \"http://127.0.0.1:$3/v1/traces\", sample_ratio: $TRACE_RATIO}"
    cat <<CONF
workers: 1
watch: false
listeners: [{name: bench, address: 127.0.0.1, port: $1}]
admin: {enabled: true, address: 127.0.0.1, port: $2}
access_log: {enabled: false}
timeouts: {keepalive_idle: 300s, upstream_idle: 300s}
clusters:
  - {name: origins, lb: $5, pool_max_per_endpoint: 4096, pool_max_idle_per_endpoint: 2048,
     endpoints: ["127.0.0.1:$3", "127.0.0.1:$4"]}
routes: [{name: all, match: {path_prefix: /}, cluster: origins${ROUTE_POLICIES:+, policies: $ROUTE_POLICIES}}]
$tracing
CONF
}

# wait_port PORT PATH: until an HTTP GET answers (30 s at most).
wait_port() {
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "http://127.0.0.1:$1$2" && return 0
        sleep 0.1
    done
    echo "port $1 did not come up" >&2
    return 1
}

# What the last wrk run (--latency) wrote to $RUN/wrk.out: requests completed, its socket errors
# and non-2xx line (empty when none), and a latency percentile (wrk_pct 99%).
wrk_requests() { awk '/requests in/ {print $1}' "$RUN/wrk.out"; }
wrk_errors() { awk '/Socket errors|Non-2xx/ {print}' "$RUN/wrk.out" | tr '\n' ' '; }
wrk_pct() { awk -v p="$1" '$1 == p {print $2}' "$RUN/wrk.out"; }
