"""Authorization policies against a real gatehouse and echo upstream: key_auth, acl,
ip_restriction and cors, alone and chained."""
import hashlib
import subprocess

import httpx

from support import Gatehouse, cluster, simple_config
from support.common import GATEHOUSE_BIN, free_port

ALICE_KEY = "alice-secret-1"
BOB_KEY = "bob+key/2"


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


CONSUMERS = [
    {"name": "alice", "groups": ["admins"], "keys": [{"sha256": sha(ALICE_KEY)}]},
    {"name": "bob", "groups": ["users"], "keys": [{"sha256": sha(BOB_KEY)}]},
]


def client(gh):
    return httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0)


def upstream_headers(resp_json):
    out = {}
    for k, v in resp_json["headers"]:
        out.setdefault(k, []).append(v)
    return out


def routed(echo, *policies, **extra):
    return simple_config(cluster("echo", echo), routes=[
        {"name": "p", "match": {"path_prefix": "/"}, "cluster": "echo",
         "policies": list(policies)}], **extra)


def key_auth(**opts):
    return {"name": "key_auth", "config": {"consumers": CONSUMERS, **opts}}


def test_key_auth_header_query_strip_and_401(gatehouse, echo):
    gh = gatehouse(routed(echo, key_auth(query="api_key", strip=True)))
    with client(gh) as c:
        r = c.get("/k", headers={"x-api-key": ALICE_KEY})
        assert r.status_code == 200
        assert "x-api-key" not in upstream_headers(r.json())
        r = c.get("/k?a=1&api_key=bob%2Bkey%2F2&b=2")
        assert r.status_code == 200
        assert r.json()["path"] == "/k?a=1&b=2"
        for headers in ({}, {"x-api-key": "nope"}, {"x-api-key": ALICE_KEY.upper()}):
            r = c.get("/k", headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'ApiKey realm="gatehouse"'
            assert r.json()["error"] == "invalid or missing API key"
    assert echo.request_count() == 2


def test_key_auth_anonymous_and_acl_by_group(gatehouse, echo):
    gh = gatehouse(routed(echo, key_auth(anonymous="guest"),
                          {"name": "acl", "config": {"allow": {"groups": ["admins"]},
                                                     "deny": {"consumers": ["guest"]}}}))
    with client(gh) as c:
        assert c.get("/a", headers={"x-api-key": ALICE_KEY}).status_code == 200
        r = c.get("/a", headers={"x-api-key": BOB_KEY})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert c.get("/a").status_code == 403  # anonymous guest is denied
        assert c.get("/a", headers={"x-api-key": "bad"}).status_code == 401
    assert echo.request_count() == 1


def test_acl_without_consumer_can_answer_401(gatehouse, echo):
    gh = gatehouse(routed(echo, {"name": "acl", "config": {
        "allow": {"consumers": ["alice"]}, "unauthenticated_status": 401}}))
    with client(gh) as c:
        r = c.get("/x")
        assert r.status_code == 401 and "www-authenticate" in r.headers
    assert echo.request_count() == 0


def test_ip_restriction_uses_real_client_ip(gatehouse, echo):
    gh = gatehouse(routed(echo, {"name": "ip_restriction", "config": {
        "allow": ["203.0.113.0/24", "2001:db8::/32"], "deny": ["203.0.113.66"]}},
        forwarded={"trusted_proxies": ["127.0.0.1/32"]}))
    with client(gh) as c:
        def status(xff):
            return c.get("/ip", headers={"x-forwarded-for": xff} if xff else {}).status_code
        assert status("203.0.113.7") == 200
        assert status("2001:db8::5") == 200
        assert status("203.0.113.66") == 403
        assert status("198.51.100.1") == 403
        assert status(None) == 403  # 127.0.0.1 itself is not allowed
    assert echo.request_count() == 2


def test_cors_preflight_actual_and_error_replies(gatehouse, echo):
    cors = {"name": "cors", "config": {
        "origins": ["https://app.example.com", "*.example.org"], "methods": ["GET", "PUT"],
        "headers": ["x-api-key", "content-type"], "expose_headers": ["x-upstream"],
        "credentials": True, "max_age": 300}}
    gh = gatehouse(routed(echo, cors, key_auth()))
    with client(gh) as c:
        r = c.options("/c", headers={"origin": "https://a.example.org",
                                     "access-control-request-method": "PUT",
                                     "access-control-request-headers": "x-api-key"})
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == "https://a.example.org"
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["access-control-allow-methods"] == "GET, PUT"
        assert r.headers["access-control-max-age"] == "300"
        r = c.options("/c", headers={"origin": "https://evil.test",
                                     "access-control-request-method": "PUT"})
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
        # Actual request: CORS headers on the proxied reply...
        r = c.get("/c", headers={"origin": "https://app.example.com", "x-api-key": ALICE_KEY})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example.com"
        assert r.headers["access-control-expose-headers"] == "x-upstream"
        assert "Origin" in r.headers.get_list("vary")
        # ...and on the gateway's own 401, so the browser can read it.
        r = c.get("/c", headers={"origin": "https://app.example.com"})
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == "https://app.example.com"
        r = c.get("/c", headers={"origin": "https://evil.test", "x-api-key": ALICE_KEY})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert echo.request_count() == 2  # preflights were never proxied


def test_bad_policy_config_is_reported(tmp_path, echo):
    g = Gatehouse(tmp_path, routed(echo, {"name": "key_auth", "config": {
        "consumers": [{"name": "a", "keys": ["plaintext"]}]}}), name="bad")
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "policies[0]" in out.stderr and "consumers[0].keys[0]" in out.stderr, out.stderr
    assert "plaintext keys are not accepted" in out.stderr


def test_consumer_appears_in_access_log(gatehouse, echo):
    gh = gatehouse(routed(echo, key_auth(), access_log={"fields": ["request_id", "path",
                                                                    "status", "consumer"]}))
    with client(gh) as c:
        assert c.get("/who", headers={"x-api-key": ALICE_KEY}).status_code == 200
        assert c.get("/anon").status_code == 401
    entry = gh.wait_log(lambda e: e.get("path") == "/who")
    assert entry["consumer"] == "alice"
    assert gh.wait_log(lambda e: e.get("path") == "/anon")["consumer"] == ""
