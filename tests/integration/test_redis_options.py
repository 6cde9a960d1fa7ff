"""Redis connection options of the rate_limit / quota Redis client against a real redis-server:
an ACL user with a password plus a database index, and TLS (server verification by a private
CA, client certificates, a wrong CA refused). Certificates are made with openssl per test."""
import shutil
import subprocess

import pytest

from support import RawConn, RedisServer, request_bytes, resp_command, wait_until
from support.common import free_port
from support.redis import REDIS_BIN

pytestmark = pytest.mark.skipif(REDIS_BIN is None or shutil.which("openssl") is None,
                                reason="redis-server or openssl is not installed")


def rl_route(rl):
    return {"routes": [{"name": "all", "direct_response": {"status": 200, "body": "ok"},
                        "policies": [{"name": "rate_limit", "config": rl}]}]}


def statuses(gh, n):
    out = []
    for _ in range(n):
        with RawConn(gh.port) as c:
            c.send(request_bytes("GET", "/"))
            out.append(c.read_response().status)
    return out


def test_acl_user_and_database(gatehouse, tmp_path):
    r = RedisServer(tmp_path / "redis-acl", extra_args=[
        "--requirepass", "admin-pw",
        # A least-privilege user: only what the limiter runs (scripts are checked command by
        # command), on gatehouse keys.
        "--user", "gh", "on", ">gh-pw", "~gatehouse:*", "+evalsha", "+eval", "+script|load",
        "+select", "+auth", "+time", "+get", "+set", "+hmget", "+hset", "+pexpire",
        "+del"]).start()
    try:
        cfg = rl_route({"name": "acl", "mode": "redis", "on_redis_error": "fail_closed",
                        "redis": {"address": r.address, "username": "gh", "password": "gh-pw",
                                  "database": 5, "timeout": "2s"},
                        "limits": [{"rate": "2/h"}]})
        gh = gatehouse(cfg, workers=1, name="acl")
        assert statuses(gh, 3) == [200, 200, 429]
        assert resp_command(r.port, "DBSIZE", auth="admin-pw", db=5) == b":1"
        assert resp_command(r.port, "DBSIZE", auth="admin-pw", db=0) == b":0"

        cfg["routes"][0]["policies"][0]["config"]["redis"]["password"] = "wrong"
        bad = gatehouse(cfg, workers=1, name="acl-bad")
        assert statuses(bad, 2) == [503, 503]  # never 401/403/429
        wait_until(lambda: "setup failed" in bad.stderr(), message="the refused AUTH logged")
    finally:
        r.stop()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d, name):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name} CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:redis.test"),
                     ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}",
                "-keyout", f"{who}.key", "-out", f"{who}.csr", cwd=d)
        (d / f"{who}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{who}.ext", "-out", f"{who}.crt",
                cwd=d)
    return d


@pytest.fixture
def tls_redis(tmp_path):
    pki = make_pki(tmp_path / "pki", "test")
    tls_port = free_port()
    r = RedisServer(tmp_path / "redis-tls", extra_args=[
        "--tls-port", str(tls_port), "--tls-cert-file", str(pki / "server.crt"),
        "--tls-key-file", str(pki / "server.key"), "--tls-ca-cert-file", str(pki / "ca.crt"),
        "--tls-auth-clients", "yes"]).start()
    r.tls_port = tls_port
    r.pki = pki
    yield r
    r.stop()


def tls_cfg(r, tls, name="tls", **redis_extra):
    return rl_route({"name": name, "mode": "redis", "on_redis_error": "fail_closed",
                     "redis": {"address": f"127.0.0.1:{r.tls_port}", "timeout": "2s",
                               "tls": tls, **redis_extra},
                     "limits": [{"rate": "3/h"}]})


def test_tls_with_client_certificate(gatehouse, tls_redis):
    pki = tls_redis.pki
    cfg = tls_cfg(tls_redis, {"ca": str(pki / "ca.crt"), "cert": str(pki / "client.crt"),
                              "key": str(pki / "client.key")}, database=2)
    gh = gatehouse(cfg, workers=2)
    assert statuses(gh, 5) == [200, 200, 200, 429, 429]
    # The counter is in Redis (read over the plain port): the traffic went through TLS.
    assert resp_command(tls_redis.port, "DBSIZE", db=2) == b":1"
    assert gh.metrics().value("gatehouse_rate_limit_redis_connections_up") >= 1
    # A Redis restart is survived over TLS too (new handshake, script loaded again).
    tls_redis.restart()
    wait_until(lambda: statuses(gh, 1) == [200], timeout=20, message="TLS reconnection")


def test_tls_quota_and_name_verification(gatehouse, tls_redis):
    pki = tls_redis.pki
    tls = {"ca": str(pki / "ca.crt"), "cert": str(pki / "client.crt"),
           "key": str(pki / "client.key"), "sni": "redis.test"}
    route = {"name": "q", "direct_response": {"status": 200, "body": "ok"},
             "policies": [{"name": "quota", "config": {
                 "name": "tlsq", "key": "client_ip", "mode": "redis",
                 "on_redis_error": "fail_closed",
                 "redis": {"address": f"127.0.0.1:{tls_redis.tls_port}", "timeout": "2s",
                           "tls": tls},
                 "limits": [{"limit": 2, "period": "day"}]}}]}
    gh = gatehouse({"routes": [route]}, workers=1)
    assert statuses(gh, 3) == [200, 200, 429]


def test_tls_wrong_ca_fails_closed(gatehouse, tls_redis, tmp_path):
    other = make_pki(tmp_path / "other", "other")
    cfg = tls_cfg(tls_redis, {"ca": str(other / "ca.crt"), "cert": str(tls_redis.pki / "client.crt"),
                              "key": str(tls_redis.pki / "client.key")}, name="badca")
    gh = gatehouse(cfg, workers=1)
    assert statuses(gh, 2) == [503, 503]
    wait_until(lambda: "TLS handshake failed" in gh.stderr(), message="the refused handshake")
    assert gh.metrics().value("gatehouse_rate_limit_redis_connections_up") == 0
    assert gh.proc.poll() is None
