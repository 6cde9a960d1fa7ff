"""Policies quota and metering against a real gatehouse (and a real redis-server for mode
redis): calendar quotas per consumer, survival across a gateway restart, the admin usage and
reset endpoints, rejected requests not charged, and usage metering on /metrics and /usage."""
import hashlib
import http.client
import json

import pytest

from support import RawConn, RedisServer, request_bytes, resp_command, wait_until
from support.redis import REDIS_BIN

needs_redis = pytest.mark.skipif(REDIS_BIN is None, reason="redis-server is not installed")

KEYS = {"alice": "alice-key-1", "bob": "bob-key-2", "carol": "carol-key-3"}
CONSUMERS = [{"name": n, "keys": [{"sha256": hashlib.sha256(k.encode()).hexdigest()}]}
             for n, k in KEYS.items()]


@pytest.fixture
def redis(tmp_path):
    r = RedisServer(tmp_path / "redis").start()
    yield r
    r.stop()


def quota_config(quota, metering=None, body="ok"):
    policies = [{"name": "key_auth", "config": {"consumers": CONSUMERS}},
                {"name": "quota", "config": quota}]
    if metering is not None:
        policies.insert(0, {"name": "metering", "config": metering})
    route = {"name": "api", "direct_response": {"status": 200, "body": body},
             "policies": policies}
    return {"routes": [route]}


def get(gh, consumer, path="/"):
    with RawConn(gh.port) as c:
        c.send(request_bytes("GET", path, headers=[("x-api-key", KEYS[consumer])]))
        return c.read_response()


def statuses(gh, consumer, n):
    return [get(gh, consumer).status for _ in range(n)]


def admin(gh, method, path):
    c = http.client.HTTPConnection("127.0.0.1", gh.admin_port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        return r.status, (json.loads(body) if body.startswith(b"{") else body)
    finally:
        c.close()


def test_local_daily_quota_headers_and_admin(gatehouse):
    cfg = quota_config({"name": "plan", "time_zone": "Europe/Berlin", "headers": "legacy",
                        "limits": [{"name": "daily", "limit": 3, "period": "day"},
                                   {"name": "monthly", "limit": 100, "period": "month"}]})
    gh = gatehouse(cfg, workers=2)
    assert statuses(gh, "alice", 5) == [200, 200, 200, 429, 429]
    r = get(gh, "alice")
    assert r.status == 429
    assert r.json()["error"] == "quota exceeded" and r.json()["request_id"]
    assert r.header("x-ratelimit-limit") == "3"
    assert r.header("x-ratelimit-remaining") == "0"
    reset = int(r.header("x-ratelimit-reset"))
    assert 1 <= reset <= 25 * 3600 and int(r.header("retry-after")) == reset
    assert statuses(gh, "bob", 1) == [200]  # per consumer

    status, j = admin(gh, "GET", "/quotas/plan/alice")
    assert status == 200, j
    assert j["mode"] == "local" and j["key"] == "alice"
    daily, monthly = j["limits"]
    # Three charged; the six rejections charged nothing, in either quota.
    assert (daily["name"], daily["used"], daily["remaining"]) == ("daily", 3, 0)
    assert (monthly["used"], monthly["remaining"]) == (3, 97)
    assert daily["time_zone"] == "Europe/Berlin" and daily["period"] == "day"
    assert daily["period_end"] - daily["period_start"] in (23 * 3600, 24 * 3600, 25 * 3600)

    status, j = admin(gh, "POST", "/quotas/plan/alice/reset")
    assert status == 200 and j["reset"] is True
    assert admin(gh, "GET", "/quotas/plan/alice")[1]["limits"][0]["used"] == 0
    assert statuses(gh, "alice", 4) == [200, 200, 200, 429]
    assert admin(gh, "DELETE", "/quotas/plan/alice")[0] == 200
    assert statuses(gh, "alice", 1) == [200]

    assert admin(gh, "GET", "/quotas/nope/alice")[0] == 404
    assert admin(gh, "PUT", "/quotas/plan/alice")[0] == 405
    status, j = admin(gh, "GET", "/quotas")
    assert status == 200 and [p["name"] for p in j["policies"]] == ["plan"]
    m = gh.metrics()
    assert m.value("gatehouse_quota_exceeded_total", policy="plan") == 2 + 1 + 1
    assert m.value("gatehouse_quota_allowed_total", policy="plan") == 3 + 1 + 3 + 1


def test_local_quota_survives_reload(gatehouse):
    cfg = quota_config({"name": "plan", "limits": [{"limit": 2, "period": "month"}]})
    gh = gatehouse(cfg, workers=1)
    assert statuses(gh, "carol", 2) == [200, 200]
    cfg["routes"][0]["direct_response"]["body"] = "changed"
    gh.write_config(cfg)
    assert gh.reload() == "success"
    assert statuses(gh, "carol", 1) == [429]


@needs_redis
def test_redis_quota_survives_a_gateway_restart(gatehouse, redis):
    cfg = quota_config({"name": "monthly", "mode": "redis", "on_redis_error": "fail_closed",
                        "redis": {"address": redis.address, "timeout": "2s"},
                        "limits": [{"limit": 4, "period": "month"},
                                   {"name": "roll", "limit": 10, "rolling": "30d"}]})
    g1 = gatehouse(cfg, workers=2, name="first")
    assert statuses(g1, "alice", 3) == [200, 200, 200]
    assert g1.stop() == 0
    g2 = gatehouse(cfg, workers=2, name="second")
    # The count lives in Redis: one left, then rejections that charge nothing.
    assert statuses(g2, "alice", 4) == [200, 429, 429, 429]
    status, j = admin(g2, "GET", "/quotas/monthly/alice")
    assert status == 200, j
    month, roll = j["limits"]
    assert j["mode"] == "redis"
    assert (month["used"], month["remaining"]) == (4, 0)
    assert (roll["used"], roll["remaining"]) == (4, 6)
    assert 0 < month["reset_seconds"] <= 31 * 86400
    # The Redis key names the policy, the consumer, the quota and the period.
    keys = resp_command(redis.port, "KEYS", "gatehouse:quota:monthly:{alice}:month:*")
    assert keys == b"*1", keys
    assert admin(g2, "POST", "/quotas/monthly/alice/reset")[0] == 200
    assert statuses(g2, "alice", 1) == [200]
    assert admin(g2, "GET", "/quotas/monthly/alice")[1]["limits"][0]["used"] == 1


@needs_redis
def test_redis_admin_answers_503_quickly_when_redis_is_down(gatehouse, redis):
    cfg = quota_config({"name": "q", "mode": "redis", "on_redis_error": "fail_open",
                        "redis": {"address": redis.address, "timeout": "200ms"},
                        "limits": [{"limit": 1, "period": "day"}]})
    gh = gatehouse(cfg, workers=1)
    assert statuses(gh, "bob", 2) == [200, 429]
    redis.kill()
    status, j = admin(gh, "GET", "/quotas/q/bob")
    assert status == 503 and "redis" in j["error"], j
    assert statuses(gh, "bob", 2) == [200, 200]  # fail_open
    assert admin(gh, "GET", "/healthz")[0] == 200  # the control loop never blocked
    assert gh.metrics().value("gatehouse_quota_degraded_total", policy="q") == 2


def test_metering_counts_requests_and_bytes(gatehouse):
    cfg = quota_config({"name": "m", "limits": [{"limit": 1000, "period": "day"}]},
                       metering={"max_consumers": 2}, body="x" * 100)
    gh = gatehouse(cfg, workers=2)
    for who, n in (("alice", 5), ("bob", 3), ("carol", 2)):
        assert statuses(gh, who, n) == [200] * n
    with RawConn(gh.port) as c:  # anonymous: key_auth answers 401
        c.send(request_bytes("GET", "/"))
        assert c.read_response().status == 401

    def usage():
        m = gh.metrics()
        return {c: m.get_value("gatehouse_usage_requests_total", route="api", consumer=c)
                for c in ("alice", "bob", "carol", "_other", "_anonymous")}
    # The first two consumers get a label; the third counts as _other.
    u = wait_until(lambda: (lambda v: v if v["_anonymous"] == 1 else None)(usage()),
                   message="metering of the last request")
    assert u == {"alice": 5, "bob": 3, "carol": None, "_other": 2, "_anonymous": 1}, u
    m = gh.metrics()
    assert m.value("gatehouse_usage_bytes_out_total", route="api", consumer="alice") >= 5 * 100
    assert m.value("gatehouse_usage_bytes_in_total", route="api",
                   consumer="alice") >= 5 * len("GET / HTTP/1.1\r\n")
    status, j = admin(gh, "GET", "/usage")
    assert status == 200
    rows = {r["consumer"]: r for r in j["usage"]}
    assert sum(r["requests"] for r in j["usage"]) == 11
    assert all(r["route"] == "api" for r in j["usage"])
    assert j["max_consumers"] == 2
    assert rows["alice"]["requests"] == 5 and rows["alice"]["bytes_out"] >= 500
    status, j = admin(gh, "GET", "/usage/alice")
    assert status == 200 and [r["consumer"] for r in j["usage"]] == ["alice"]


def test_quota_and_metering_over_http2(gatehouse):
    httpx = pytest.importorskip("httpx")
    cfg = quota_config({"name": "h2q", "limits": [{"limit": 2, "period": "day"}]},
                       metering={}, body="y" * 50)
    gh = gatehouse(cfg, workers=1)
    with httpx.Client(http1=False, http2=True, timeout=20) as c:
        rs = [c.get(f"{gh.url}/s{i}", headers={"x-api-key": KEYS["carol"]}) for i in range(3)]
    assert [r.http_version for r in rs] == ["HTTP/2"] * 3
    assert [r.status_code for r in rs] == [200, 200, 429]
    assert rs[2].headers["ratelimit"].startswith('"day";r=0;t=')

    def carol():
        rows = [r for r in admin(gh, "GET", "/usage/carol")[1]["usage"] if r["route"] == "api"]
        return rows[0] if rows and rows[0]["requests"] == 3 else None
    row = wait_until(carol, message="metering of the HTTP/2 streams")
    assert row["bytes_out"] >= 2 * 50 and row["bytes_in"] > 0
