"""Policy rate_limit, local mode: exactness across workers under concurrent load, response
headers, rejected requests not charged, in-flight caps, missing keys and metrics.

Limits here refill slowly (per hour) so that no result depends on how fast the box is: the
number of admitted requests is exact whatever the scheduling."""
import json
import subprocess
import threading

from support import GATEHOUSE_BIN, RawConn, cluster, request_bytes, simple_config, wait_until


def rl_config(echo, rl, **route_extra):
    route = {"name": "all", "match": {"path_prefix": "/"}, "cluster": "echo",
             "policies": [{"name": "rate_limit", "config": rl}], **route_extra}
    return simple_config(cluster("echo", echo), routes=[route])


def get(gh, path="/", headers=(), conn=None):
    c = conn or RawConn(gh.port)
    try:
        c.send(request_bytes("GET", path, headers=list(headers)))
        return c.read_response()
    finally:
        if conn is None:
            c.close()


def hammer(gh, total, threads=8, headers=()):
    """Sends `total` requests from `threads` threads, one new connection per request (so the
    kernel spreads them over both workers). Returns the list of statuses."""
    statuses = []
    lock = threading.Lock()
    errors = []

    def run(n):
        try:
            for _ in range(n):
                r = get(gh, "/h", headers)
                with lock:
                    statuses.append(r.status)
        except Exception as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    per = [total // threads + (1 if i < total % threads else 0) for i in range(threads)]
    ts = [threading.Thread(target=run, args=(n,), daemon=True) for n in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    assert len(statuses) == total
    return statuses


def test_token_bucket_is_exact_across_two_workers(gatehouse, echo):
    gh = gatehouse(rl_config(echo, {"name": "exact-tb", "limits": [{"rate": "50/h"}]}), workers=2)
    statuses = hammer(gh, 160)
    assert statuses.count(200) == 50, sorted(set(statuses))
    assert statuses.count(429) == 110
    m = gh.metrics()
    assert m.value("gatehouse_rate_limit_allowed_total", policy="exact-tb") == 50
    assert m.value("gatehouse_rate_limit_limited_total", policy="exact-tb") == 110
    # One connection per request: SO_REUSEPORT spreads them over both workers.
    assert echo.request_count() == 50


def test_sliding_window_is_exact_across_two_workers(gatehouse, echo):
    gh = gatehouse(rl_config(echo, {"limits": [{"rate": "40/h", "algorithm": "sliding_window"}]}),
                   workers=2)
    statuses = hammer(gh, 120)
    assert statuses.count(200) == 40
    assert statuses.count(429) == 80


def test_draft_headers_on_success_and_on_429(gatehouse, echo):
    gh = gatehouse(rl_config(echo, {"limits": [{"rate": "2/h", "name": "hourly"}],
                                    "headers_on_success": True}))
    r1 = get(gh)
    assert r1.status == 200
    assert r1.header("ratelimit-policy") == '"hourly";q=2;w=3600'
    assert r1.header("ratelimit") == '"hourly";r=1;t=1800'
    r2 = get(gh)
    assert r2.status == 200 and r2.header("ratelimit") == '"hourly";r=0;t=3600'
    r3 = get(gh, headers=[("x-request-id", "rl-test-3")])
    assert r3.status == 429
    assert r3.header("content-type") == "application/json"
    j = r3.json()
    assert j["status"] == 429 and j["request_id"] == "rl-test-3", j
    retry = int(r3.header("retry-after"))
    assert 1790 <= retry <= 1800, retry
    assert r3.header_all("ratelimit") == ['"hourly";r=0;t=3600']
    assert r3.header("ratelimit-policy") == '"hourly";q=2;w=3600'
    assert echo.request_count() == 2  # the 429 never reached the upstream


def test_legacy_headers_only_on_429_by_default(gatehouse, echo):
    gh = gatehouse(rl_config(echo, {"limits": [{"rate": "1/h"}], "headers": "legacy"}))
    r1 = get(gh)
    assert r1.status == 200
    assert r1.header("x-ratelimit-limit") is None and r1.header("ratelimit") is None
    r2 = get(gh)
    assert r2.status == 429
    assert r2.header("x-ratelimit-limit") == "1"
    assert r2.header("x-ratelimit-remaining") == "0"
    assert 3590 <= int(r2.header("x-ratelimit-reset")) <= 3600
    assert r2.header("ratelimit") is None


def test_rejected_requests_do_not_consume_other_limits(gatehouse, echo):
    # An in-flight cap of 1 rejects everything while one request is held at the upstream; the
    # hourly window must not be charged by those rejections.
    gh = gatehouse(rl_config(echo, {"limits": [
        {"concurrency": 1},
        {"rate": "5/h", "algorithm": "sliding_window"}]}))
    held = {}

    def slow():
        with RawConn(gh.port, timeout=30) as c:
            c.send(request_bytes("GET", "/held", headers=[("x-echo-wait", "rl")]))
            held["status"] = c.read_response(timeout=30).status

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    try:
        wait_until(lambda: echo.request_count() == 1, message="the held request at the upstream")
        rejected = [get(gh).status for _ in range(6)]
        assert rejected == [429] * 6
    finally:
        echo.release("rl")
        t.join(30)
    assert held["status"] == 200
    # The in-flight slot is released in onComplete, right after the response was sent, so a new
    # connection (maybe on another worker) can still find it taken for an instant. One
    # keep-alive connection is served in order: each request's slot is back before the next
    # request is read.
    with RawConn(gh.port, timeout=30) as c:
        wait_until(lambda: get(gh, "/probe", conn=c).status == 200,
                   message="the in-flight slot released")
        # 5 per hour: the held request and the probe used 2; 3 remain, the 6 rejections used none.
        assert [get(gh, conn=c).status for _ in range(4)] == [200, 200, 200, 429]


def test_header_key_with_missing_key_denied(gatehouse, echo):
    gh = gatehouse(rl_config(echo, {"key": ["header:x-api-key"], "missing_key": "deny",
                                    "limits": [{"rate": "1/h"}]}))
    assert get(gh).status == 429
    assert get(gh, headers=[("x-api-key", "a")]).status == 200
    assert get(gh, headers=[("x-api-key", "a")]).status == 429
    assert get(gh, headers=[("x-api-key", "b")]).status == 200
    assert gh.metrics().total("gatehouse_rate_limit_missing_key_total") == 1


def test_bad_rate_is_a_config_error(tmp_path):
    cfg = {"clusters": [{"name": "c", "endpoints": ["127.0.0.1:9"]}],
           "routes": [{"cluster": "c", "policies": [
               {"name": "rate_limit", "config": {"limits": [{"rate": "10/fortnight"}]}}]}]}
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(cfg))
    p = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "limits[0].rate: invalid rate '10/fortnight'" in out, out
    assert "policies[0]" in out, out


def test_counters_and_in_flight_caps_survive_a_reload(gatehouse, echo):
    def config(hourly):
        return simple_config(cluster("echo", echo), routes=[
            {"name": "held", "match": {"path_prefix": "/held"}, "cluster": "echo",
             "policies": [{"name": "rate_limit", "config": {"limits": [{"concurrency": 1}]}}]},
            {"name": "all", "match": {"path_prefix": "/"}, "cluster": "echo",
             "policies": [{"name": "rate_limit", "config": {"limits": [{"rate": hourly}]}}]}])
    gh = gatehouse(config("3/h"), workers=2)
    assert [get(gh, "/a").status for _ in range(4)] == [200, 200, 200, 429]
    held = {}

    def slow():
        with RawConn(gh.port, timeout=30) as c:
            c.send(request_bytes("GET", "/held", headers=[("x-echo-wait", "reload")]))
            held["status"] = c.read_response(timeout=30).status

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    try:
        wait_until(lambda: echo.request_count() == 4, message="the held request at the upstream")
        # The same config again: the client at its limit stays limited, and the in-flight cap
        # still counts the request held across the reload.
        assert gh.reload() == "success"
        assert [get(gh, "/a").status for _ in range(3)] == [429] * 3
        assert get(gh, "/held").status == 429
    finally:
        echo.release("reload")
        t.join(30)
    assert held["status"] == 200
    with RawConn(gh.port, timeout=30) as c:  # the released slot is usable again
        wait_until(lambda: get(gh, "/held", conn=c).status == 200,
                   message="the in-flight slot released into the kept counter")
    # A changed limit is a new policy: it starts from fresh counters.
    gh.write_config(config("4/h"))
    assert gh.reload() == "success"
    assert [get(gh, "/a").status for _ in range(5)] == [200] * 4 + [429]
