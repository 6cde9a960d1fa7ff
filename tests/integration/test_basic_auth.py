"""basic_auth against a real gatehouse: bcrypt and salted SHA-256 hashes from the consumer
registry and inline, the 401 challenge, the per-worker bcrypt cache (counted), and bcrypt
running off the worker loop."""
import threading

import httpx

from support import cluster, simple_config
from support.auth import basic, bcrypt_hash, salted_sha256

ALICE_PW = "correct horse"
BOB_PW = "battery staple"


def consumers(cost=10):
    return [
        {"name": "alice", "groups": ["admins"], "metadata": {"team": "payments"},
         "credentials": {"basic": [{"password": bcrypt_hash(ALICE_PW, cost)}]}},
        {"name": "bob", "credentials": {"basic": [{"username": "bobby",
                                                   "password": salted_sha256(BOB_PW)}]}},
    ]


def config(echo, extra_routes=(), cost=10, **opts):
    return simple_config(cluster("echo", echo), consumers=consumers(cost), routes=[
        *extra_routes,
        {"name": "basic", "match": {"path_prefix": "/"}, "cluster": "echo",
         "policies": [{"name": "basic_auth",
                       "config": {"realm": "api", "consumer_header": "x-consumer",
                                  "metadata_headers": {"team": "x-team"}, **opts}}]}])


def client(gh):
    return httpx.Client(base_url=gh.url, trust_env=False, timeout=30.0)


def bcrypt_counter(gh, result):
    return gh.metrics().value("gatehouse_basic_auth_bcrypt_total", result=result)


def test_good_bad_and_missing_credentials(gatehouse, echo):
    gh = gatehouse(config(echo))
    with client(gh) as c:
        r = c.get("/a", headers={"authorization": basic("alice", ALICE_PW),
                                 "x-consumer": "mallory"})
        assert r.status_code == 200
        hdrs = {}
        for k, v in r.json()["headers"]:
            hdrs.setdefault(k, []).append(v)
        assert hdrs["x-consumer"] == ["alice"] and hdrs["x-team"] == ["payments"]
        assert c.get("/b", headers={"authorization": basic("bobby", BOB_PW)}).status_code == 200
        bad = [basic("alice", "wrong"), basic("bobby", BOB_PW + "!"), basic("bob", BOB_PW),
               basic("nobody", "x")]
        for h in bad:
            r = c.get("/x", headers={"authorization": h})
            assert r.status_code == 401, h
            assert r.headers["www-authenticate"] == 'Basic realm="api"'
            body = r.json()
            assert body["error"] == "invalid or missing credentials" and body["status"] == 401
            assert body["request_id"]
        assert c.get("/x").status_code == 401
        assert c.get("/x", headers={"authorization": "Basic %%%"}).status_code == 401
        assert c.get("/x", headers={"authorization": "Bearer abc"}).status_code == 401
    m = gh.metrics()
    assert m.value("gatehouse_auth_rejections_total", policy="basic_auth",
                   reason="bad_credentials") == 4
    assert m.value("gatehouse_auth_rejections_total", policy="basic_auth", reason="missing") == 2
    assert m.value("gatehouse_auth_rejections_total", policy="basic_auth", reason="malformed") == 1
    assert echo.request_count() == 2


def test_bcrypt_cache_serves_the_second_request(gatehouse, echo):
    gh = gatehouse(config(echo), workers=1)  # the cache is per worker
    with client(gh) as c:
        h = {"authorization": basic("alice", ALICE_PW)}
        assert c.get("/1", headers=h).status_code == 200
        assert bcrypt_counter(gh, "verified") == 1
        assert bcrypt_counter(gh, "cache_hit") == 0
        for i in range(3):
            assert c.get(f"/{i}", headers=h).status_code == 200
        assert bcrypt_counter(gh, "verified") == 1
        assert bcrypt_counter(gh, "cache_hit") == 3
        # A wrong password is never cached as good.
        assert c.get("/w", headers={"authorization": basic("alice", "nope")}).status_code == 401
        assert bcrypt_counter(gh, "failed") == 1


def test_cache_can_be_disabled(gatehouse, echo):
    gh = gatehouse(config(echo, cost=4, cache_ttl=0), workers=1)
    with client(gh) as c:
        h = {"authorization": basic("alice", ALICE_PW)}
        for _ in range(2):
            assert c.get("/", headers=h).status_code == 200
    assert bcrypt_counter(gh, "verified") == 2
    assert bcrypt_counter(gh, "cache_hit") == 0


def test_bcrypt_does_not_block_the_worker(gatehouse, echo):
    # One worker; cost 13 takes several hundred ms. While it runs, another request on the same
    # worker is served: bcrypt runs on the offload pool, not on the event loop.
    open_route = {"name": "open", "match": {"path_prefix": "/open"}, "cluster": "echo"}
    gh = gatehouse(config(echo, extra_routes=[open_route], cost=13), workers=1)
    result = {}

    def slow():
        with client(gh) as c:
            result["status"] = c.get("/slow", headers={"authorization": basic("alice", ALICE_PW)}
                                     ).status_code
    t = threading.Thread(target=slow)
    t.start()
    with client(gh) as c:
        for _ in range(3):
            assert c.get("/open").status_code == 200
        fast_done_while_slow_running = t.is_alive()
    t.join(60)
    assert result["status"] == 200
    assert fast_done_while_slow_running


def test_inline_users_and_registry_together(gatehouse, echo):
    cfg = config(echo, consumers="registry", strip=True,
                 users=[{"username": "ops", "password": salted_sha256("ops-pw", "xy"),
                         "groups": ["staff"]}])
    gh = gatehouse(cfg)
    with client(gh) as c:
        r = c.get("/", headers={"authorization": basic("ops", "ops-pw")})
        assert r.status_code == 200
        assert not [v for k, v in r.json()["headers"] if k == "authorization"]  # strip: true
        assert c.get("/", headers={"authorization": basic("bobby", BOB_PW)}).status_code == 200
        assert c.get("/", headers={"authorization": basic("ops", "x")}).status_code == 401
