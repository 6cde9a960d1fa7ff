"""Policy rate_limit, mode redis: several gateways share one limit through a real redis-server;
Redis killed mid-test and restarted: fail_open / fail_closed / fallback behave as configured,
nothing crashes, and recovery needs no help. Every wait is a condition, never a bare sleep."""
import json
import os
import signal
import threading
import time

import pytest

from support import RawConn, RedisServer, request_bytes, resp_command, wait_until
from support.redis import REDIS_BIN

pytestmark = pytest.mark.skipif(REDIS_BIN is None, reason="redis-server is not installed")


@pytest.fixture
def redis(tmp_path):
    r = RedisServer(tmp_path / "redis").start()
    yield r
    r.stop()


def rl_config(rl):
    route = {"name": "all", "direct_response": {"status": 200, "body": "ok"},
             "policies": [{"name": "rate_limit", "config": rl}]}
    return {"routes": [route]}


def redis_rl(redis, limits, mode="redis", **extra):
    # A generous call timeout: the box is loaded, and a timeout would turn into the failure
    # mode, which these tests want to see only when Redis is really gone.
    return rl_config({"name": "global", "mode": mode,
                      "redis": {"address": redis.address, "timeout": "2s"},
                      "limits": limits, **extra})


def get(gh, path="/"):
    with RawConn(gh.port) as c:
        c.send(request_bytes("GET", path))
        return c.read_response()


def statuses(gh, n):
    return [get(gh).status for _ in range(n)]


def up(gh):
    return gh.metrics().value("gatehouse_rate_limit_redis_connections_up")


def test_three_gateways_share_one_global_limit(gatehouse, redis):
    cfg = redis_rl(redis, [{"rate": "60/h"}], on_redis_error="fail_closed")
    ghs = [gatehouse(cfg, workers=1, name=f"g{i}") for i in range(3)]
    results = []
    lock = threading.Lock()
    errors = []

    def run(gh):
        try:
            for _ in range(50):
                s = get(gh).status
                with lock:
                    results.append(s)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(g,), daemon=True) for g in ghs for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    assert len(results) == 300
    failed = results.count(503)
    # The script runs atomically in Redis, so the limit is exact. The only slack: a call that
    # timed out (fail_closed: 503) may still have been charged by Redis. None is expected.
    assert 60 - failed <= results.count(200) <= 60, (results.count(200), failed)
    assert results.count(200) + results.count(429) + failed == 300
    assert failed == 0
    total_allowed = sum(g.metrics().value("gatehouse_rate_limit_allowed_total", policy="global")
                        for g in ghs)
    assert total_allowed == 60


def test_rejections_are_not_charged_globally(gatehouse, redis):
    # 2 per hour by token bucket and 3 per hour by window: the 8 bucket rejections must not use
    # the window, which a second gateway then still finds with one request left.
    cfg = redis_rl(redis, [{"rate": "2/h", "name": "b"},
                           {"rate": "3/h", "algorithm": "sliding_window", "name": "w"}],
                   headers_on_success=True)
    g1 = gatehouse(cfg, workers=1, name="a")
    g2 = gatehouse(cfg, workers=1, name="b")
    assert statuses(g1, 10) == [200, 200] + [429] * 8
    r = get(g2)
    assert r.status == 429  # the bucket is empty on every gateway
    assert r.header("ratelimit").startswith('"b";r=0'), r.header("ratelimit")
    assert 1 <= int(r.header("retry-after")) <= 1800


def test_script_cache_flush_is_survived(gatehouse, redis):
    gh = gatehouse(redis_rl(redis, [{"rate": "3/h"}], on_redis_error="fail_closed"), workers=1)
    assert statuses(gh, 1) == [200]
    assert resp_command(redis.port, "SCRIPT", "FLUSH") == b"+OK"
    # EVALSHA gets NOSCRIPT; the call is retried with the script text (no 503).
    assert statuses(gh, 3) == [200, 200, 429]


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed", "fallback"])
def test_redis_killed_and_restarted(gatehouse, redis, mode):
    cfg = redis_rl(redis, [{"rate": "4/h"}], on_redis_error=mode, fallback_share=0.5)
    gh = gatehouse(cfg, workers=2)
    assert statuses(gh, 6) == [200] * 4 + [429] * 2
    before = up(gh)  # workers connect on their first request: one or both
    assert before >= 1
    redis.kill()
    wait_until(lambda: up(gh) == 0, message="the gateway to notice Redis is gone")
    during = [get(gh) for _ in range(6)]
    codes = [r.status for r in during]
    if mode == "fail_open":
        assert codes == [200] * 6
    elif mode == "fail_closed":
        assert codes == [503] * 6
        j = during[0].json()
        assert j["status"] == 503 and "unavailable" in j["error"], j
    else:
        # Local limits at half the rate: 2 per hour, exact across both workers of the process.
        assert codes == [200, 200, 429, 429, 429, 429]
    m = gh.metrics()
    assert m.value("gatehouse_rate_limit_degraded_total", policy="global") == 6
    assert gh.proc.poll() is None
    assert "redis 127.0.0.1:" in gh.stderr()  # the outage is logged

    redis.restart()  # same port, empty data set, empty script cache
    # No request needed: each worker that had connected reconnects on its own (backoff <= 1 s).
    # A worker that first met Redis during the outage (a request it served) reconnects too.
    wait_until(lambda: up(gh) >= before, timeout=20, message="automatic reconnection")
    # A worker that met Redis only during the outage may still be in its backoff: its next
    # request would use the fallback. When both workers met it, wait for both (backoff <= 1 s);
    # when one never did, it connects on its first request, which waits for the connection.
    try:
        wait_until(lambda: up(gh) == 2, timeout=5, message="both workers reconnected")
    except AssertionError:
        pass
    # Back on the global counter, which the restarted Redis starts afresh.
    assert statuses(gh, 6) == [200] * 4 + [429] * 2
    assert gh.metrics().value("gatehouse_rate_limit_degraded_total", policy="global") == 6


def test_hybrid_batches_never_over_admit(gatehouse, redis):
    # Each process takes up to 5 requests at a time from the global 60/h and spends them
    # locally. Over-admission: none (a batch is charged in Redis before it is spent). Under-
    # admission: at most the unspent rest of the batches held when the budget ran out, i.e.
    # processes x concurrent misses per process x (batch - 1) = 3 x 2 x 4 = 24. A long TTL
    # keeps batch expiry (which is time-based) out of the count.
    cfg = redis_rl(redis, [{"rate": "60/h"}], mode="hybrid", on_redis_error="fail_closed",
                   hybrid={"batch": 5, "batch_ttl": "10s"})
    ghs = [gatehouse(cfg, workers=1, name=f"h{i}") for i in range(3)]
    results = []
    lock = threading.Lock()

    def run(gh):
        for _ in range(40):
            s = get(gh).status
            with lock:
                results.append(s)

    ts = [threading.Thread(target=run, args=(g,), daemon=True) for g in ghs for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(results) == 240
    assert results.count(503) == 0
    allowed = results.count(200)
    print(f"hybrid: {allowed} of the global 60 admitted")
    assert 60 - 24 <= allowed <= 60, allowed
    assert allowed + results.count(429) == 240


def test_auth_and_database(gatehouse, tmp_path):
    r = RedisServer(tmp_path / "redis-auth", extra_args=["--requirepass", "s3cret"]).start()
    try:
        good = rl_config({"name": "authed", "mode": "redis", "on_redis_error": "fail_closed",
                          "redis": {"address": r.address, "password": "s3cret", "database": 3,
                                    "timeout": "2s"},
                          "limits": [{"rate": "2/h"}]})
        gh = gatehouse(good, workers=1, name="good")
        assert statuses(gh, 3) == [200, 200, 429]
        # The counter lives in database 3, nowhere else.
        assert resp_command(r.port, "DBSIZE", auth="s3cret", db=3) == b":1"
        assert resp_command(r.port, "DBSIZE", auth="s3cret", db=0) == b":0"

        bad = json_copy(good)
        bad["routes"][0]["policies"][0]["config"]["redis"]["password"] = "wrong"
        gb = gatehouse(bad, workers=1, name="bad")
        # Refused AUTH: the limit fails closed (503, never 429/401/403), and says why in the log.
        assert statuses(gb, 2) == [503, 503]
        wait_until(lambda: "setup failed" in gb.stderr(), message="the AUTH failure logged")
        assert gb.proc.poll() is None
    finally:
        r.stop()


def json_copy(d):
    return json.loads(json.dumps(d))


def test_concurrency_cap_shared_through_redis(gatehouse, redis, echo):
    # An in-flight cap of 2 per client, shared by two gateways: two requests held at the
    # upstream through gateway A leave no room on gateway B until they complete.
    rl = {"name": "inflight", "mode": "redis", "on_redis_error": "fail_closed",
          "redis": {"address": redis.address, "timeout": "2s"}, "concurrency_lease": "30s",
          "limits": [{"concurrency": 2}, {"rate": "100/h", "name": "hourly"}]}
    cfg = {"clusters": [{"name": "echo", "endpoints": [echo.endpoint]}],
           "routes": [{"name": "all", "cluster": "echo",
                       "policies": [{"name": "rate_limit", "config": rl}]}]}
    ga = gatehouse(cfg, workers=2, name="a")
    gb = gatehouse(cfg, workers=1, name="b")
    held = []

    def slow():
        with RawConn(ga.port, timeout=30) as c:
            c.send(request_bytes("GET", "/held", headers=[("x-echo-wait", "cc")]))
            held.append(c.read_response(timeout=30).status)

    ts = [threading.Thread(target=slow, daemon=True) for _ in range(2)]
    for t in ts:
        t.start()
    try:
        wait_until(lambda: echo.request_count() == 2, message="two held requests at the upstream")
        r = get(gb)
        assert r.status == 429
        assert r.header("ratelimit").startswith('"concurrency";r=0'), r.header("ratelimit")
        assert r.header("retry-after") == "1"
        assert get(ga).status == 429
        inflight = [k for k in resp_keys(redis) if k.endswith(":0")]
        assert len(inflight) == 1 and resp_command(redis.port, "ZCARD", inflight[0]) == b":2"
    finally:
        echo.release("cc")
        for t in ts:
            t.join(30)
    assert held == [200, 200]
    # Released in onComplete (a fire-and-forget call): the set empties, B gets through.
    wait_until(lambda: get(gb).status == 200, message="the in-flight entries released")
    # Redis removes a sorted set with its last member: no in-flight key is left.
    wait_until(lambda: not [k for k in resp_keys(redis) if k.endswith(":0")],
               message="the in-flight set empty")
    assert [k for k in resp_keys(redis) if k.endswith(":1")]  # the hourly counter stays
    # Each gateway counts its own rejections.
    m = ga.metrics().value("gatehouse_rate_limit_limited_total", policy="inflight")
    assert m == 1


def resp_keys(redis):
    """Every key name in db 0 (a small test data set)."""
    import socket
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n")
        buf = b""
        while True:
            chunk = s.recv(65536)
            buf += chunk
            lines = buf.split(b"\r\n")
            if lines and lines[0].startswith(b"*"):
                n = int(lines[0][1:])
                if len(lines) >= 1 + 2 * n + 1:
                    return [lines[2 + 2 * i].decode() for i in range(n)]
            if not chunk:
                return []


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
def test_redis_that_hangs_is_cut_off_by_the_call_timeout(gatehouse, redis, mode):
    # SIGSTOP: Redis keeps its connections open and accepts new ones, but never answers. Only
    # the call timeout ends a request's wait; the failure mode then decides it.
    limited = {"name": "limited", "match": {"path_prefix": "/limited"},
               "direct_response": {"status": 200, "body": "limited"},
               "policies": [{"name": "rate_limit", "config": {
                   "name": "hang", "mode": "redis", "on_redis_error": mode,
                   "redis": {"address": redis.address, "timeout": "300ms"},
                   "limits": [{"rate": "1000/h"}]}}]}
    free = {"name": "free", "match": {"path_prefix": "/"},
            "direct_response": {"status": 200, "body": "free"}}
    gh = gatehouse({"routes": [limited, free]}, workers=2)
    assert [get(gh, "/limited").status for _ in range(4)] == [200] * 4
    expected = 200 if mode == "fail_open" else 503
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(4):
            t0 = time.monotonic()
            r = get(gh, "/limited")
            # 300 ms, with a bound generous enough for a loaded box; without the call timeout
            # the request would wait for as long as Redis stays stopped.
            assert time.monotonic() - t0 < 10, "the call timeout did not cut the wait"
            assert r.status == expected, r.status
        # Requests waiting on the stopped Redis hold nothing an unlimited route needs.
        waiting = [threading.Thread(target=get, args=(gh, "/limited"), daemon=True)
                   for _ in range(4)]
        for t in waiting:
            t.start()
        assert [get(gh, "/free").status for _ in range(6)] == [200] * 6
        for t in waiting:
            t.join(30)
        m = gh.metrics()
        assert m.value("gatehouse_rate_limit_degraded_total", policy="hang") == 8
        assert m.value("gatehouse_rate_limit_redis_errors_total", policy="hang") >= 1
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)

    # Back on Redis: requests are decided by the counter again, not by the failure mode.
    def decided_by_redis():
        before = gh.metrics().value("gatehouse_rate_limit_degraded_total", policy="hang")
        ok = get(gh, "/limited").status == 200
        return ok and gh.metrics().value("gatehouse_rate_limit_degraded_total",
                                         policy="hang") == before
    wait_until(decided_by_redis, timeout=30, message="recovery after SIGCONT")
