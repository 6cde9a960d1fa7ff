"""The top-level consumers registry against a real gatehouse: key_auth over the registry with
metadata forwarded as headers, any-of authentication (optional policies + require_consumer),
ACLs on registry groups, config validation of the registry and of references to it, and a
password change taking effect on reload."""
import subprocess

import httpx

from support import Gatehouse, cluster, simple_config
from support.auth import basic, http_date, salted_sha256, sha256_hex, sign
from support.common import GATEHOUSE_BIN, free_port

ALICE_KEY = "alice-api-key-1"
HMAC_SECRET = "carol-hmac-secret-0123456789"

CONSUMERS = [
    {"name": "alice", "groups": ["admins"], "metadata": {"tier": "gold", "team": "core"},
     "credentials": {"api_keys": [{"sha256": sha256_hex(ALICE_KEY)}]}},
    {"name": "bob", "groups": ["users"],
     "credentials": {"basic": [{"password": salted_sha256("bob-pw")}]}},
    {"name": "carol", "groups": ["partners"],
     "credentials": {"hmac": [{"key_id": "carol-1", "secret": HMAC_SECRET}]}},
]


def client(gh):
    return httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0)


def routed(echo, *policies, consumers=CONSUMERS):
    return simple_config(cluster("echo", echo), consumers=consumers, routes=[
        {"name": "r", "match": {"path_prefix": "/"}, "cluster": "echo",
         "policies": list(policies)}])


def upstream_headers(r):
    out = {}
    for k, v in r.json()["headers"]:
        out.setdefault(k, []).append(v)
    return out


def test_key_auth_over_the_registry_forwards_metadata(gatehouse, echo):
    gh = gatehouse(routed(echo, {"name": "key_auth", "config": {
        "consumers": "registry", "strip": True, "consumer_header": "x-consumer",
        "metadata_headers": {"tier": "x-consumer-tier"}}}))
    with client(gh) as c:
        r = c.get("/", headers={"x-api-key": ALICE_KEY, "x-consumer-tier": "platinum"})
        assert r.status_code == 200
        h = upstream_headers(r)
        assert h["x-consumer"] == ["alice"] and h["x-consumer-tier"] == ["gold"]
        assert "x-api-key" not in h
        r = c.get("/", headers={"x-api-key": "nope"})
        assert r.status_code == 401
    assert gh.metrics().value("gatehouse_auth_rejections_total", policy="key_auth",
                              reason="bad_credentials") == 1


def test_any_of_key_basic_or_hmac(gatehouse, echo):
    gh = gatehouse(routed(
        echo,
        {"name": "key_auth", "config": {"optional": True, "consumer_header": "x-consumer"}},
        {"name": "basic_auth", "config": {"optional": True, "consumer_header": "x-consumer"}},
        {"name": "hmac_auth", "config": {"optional": True, "consumer_header": "x-consumer"}},
        {"name": "require_consumer"},
        {"name": "acl", "config": {"allow": {"groups": ["admins", "users", "partners"]}}}))
    signed = sign("GET", "/h", {"Host": "gh.test", "Date": http_date()}, "carol-1", HMAC_SECRET)
    with client(gh) as c:
        for headers, who in (({"x-api-key": ALICE_KEY}, "alice"),
                             ({"authorization": basic("bob", "bob-pw")}, "bob"),
                             (signed, "carol")):
            r = c.get("/h", headers=headers)
            assert r.status_code == 200, (who, r.text)
            assert upstream_headers(r)["x-consumer"] == [who]
        # No credential at all: one challenge per method.
        r = c.get("/none", headers={"x-consumer": "alice"})
        assert r.status_code == 401
        challenges = r.headers.get_list("www-authenticate")
        assert len(challenges) == 3
        assert any(ch.startswith("Basic ") for ch in challenges)
        assert any(ch.startswith("Signature ") for ch in challenges)
        # A wrong credential is a 401 from its policy, never a fall-through to anonymous.
        r = c.get("/bad", headers={"authorization": basic("bob", "wrong")})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic ")
    m = gh.metrics()
    assert m.value("gatehouse_auth_rejections_total", policy="require_consumer",
                   reason="missing") == 1
    assert m.value("gatehouse_auth_rejections_total", policy="basic_auth",
                   reason="bad_credentials") == 1
    assert echo.request_count() == 3


def validate(tmp_path, cfg, name):
    g = Gatehouse(tmp_path, cfg, name=name)
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    return subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                          text=True, timeout=30)


def test_registry_errors_fail_validation(tmp_path, echo):
    ok = validate(tmp_path, routed(echo, {"name": "key_auth", "config": {}}), "ok")
    assert ok.returncode == 0, ok.stderr

    out = validate(tmp_path, routed(echo, {"name": "basic_auth",
                                           "config": {"consumers": ["bob", "dave"]}}), "unknown")
    assert out.returncode != 0
    assert "policies[0].config" in out.stderr
    assert "consumers[1]: unknown consumer 'dave'" in out.stderr, out.stderr

    out = validate(tmp_path, routed(echo, {"name": "acl", "config": {
        "allow": {"consumers": ["alice", "eve"]}}}), "acl")
    assert out.returncode != 0 and "unknown consumer 'eve'" in out.stderr, out.stderr

    bad = [dict(CONSUMERS[1], credentials={"basic": [{"password": "bob-pw"}]})]
    out = validate(tmp_path, routed(echo, {"name": "basic_auth"}, consumers=bad), "plain")
    assert out.returncode != 0
    assert "consumers[0].credentials.basic[0].password" in out.stderr
    assert "plaintext passwords are not accepted" in out.stderr

    dup = CONSUMERS + [{"name": "alice"}]
    out = validate(tmp_path, routed(echo, {"name": "key_auth"}, consumers=dup), "dup")
    assert out.returncode != 0 and "duplicate consumer name 'alice'" in out.stderr, out.stderr

    out = validate(tmp_path, routed(echo, {"name": "require_consumer"}), "alone")
    assert out.returncode != 0 and "no authentication policy" in out.stderr, out.stderr


def test_password_change_applies_on_reload(gatehouse, echo):
    cfg = routed(echo, {"name": "basic_auth"})
    gh = gatehouse(cfg)
    with client(gh) as c:
        assert c.get("/", headers={"authorization": basic("bob", "bob-pw")}).status_code == 200
        new = [dict(CONSUMERS[1], credentials={"basic": [{"password": salted_sha256("new-pw")}]})]
        gh.write_config(routed(echo, {"name": "basic_auth"}, consumers=CONSUMERS[:1] + new))
        assert gh.reload() == "success"
        assert c.get("/", headers={"authorization": basic("bob", "bob-pw")}).status_code == 401
        assert c.get("/", headers={"authorization": basic("bob", "new-pw")}).status_code == 200
