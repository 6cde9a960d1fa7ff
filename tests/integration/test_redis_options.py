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


class Sentinel:
    """A redis-server in sentinel mode (it needs a writable config file), stopped by PID."""

    def __init__(self, d, master_port):
        import subprocess as sp
        d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = d / "sentinel.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {d}\n"
                        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
                        "sentinel down-after-milliseconds mymaster 60000\n")
        self.log = open(d / "sentinel.log", "ab")
        self.proc = sp.Popen([REDIS_BIN, str(conf), "--sentinel"], stdin=sp.DEVNULL,
                             stdout=self.log, stderr=self.log)
        wait_until(lambda: self._master() == str(master_port), 15,
                   message="sentinel to name the master")

    def _master(self):
        try:
            import socket
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n"
                          b"$8\r\nmymaster\r\n")
                buf = b""
                while buf.count(b"\r\n") < 5:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                lines = buf.split(b"\r\n")
                return lines[4].decode() if lines[0] == b"*2" else None
        except OSError:
            return None

    def monitor(self, port):
        assert resp_command(self.port, "SENTINEL", "REMOVE", "mymaster") == b"+OK"
        assert resp_command(self.port, "SENTINEL", "MONITOR", "mymaster", "127.0.0.1",
                            str(port), "1") == b"+OK"
        wait_until(lambda: self._master() == str(port), 15, message="sentinel to switch")

    def stop(self):
        from support import stop_process
        stop_process(self.proc, timeout=10)
        self.log.close()


def test_sentinel_discovery_and_rediscovery(gatehouse, tmp_path):
    m1 = RedisServer(tmp_path / "m1").start()
    m2 = None
    sentinel = Sentinel(tmp_path / "sentinel", m1.port)
    try:
        dead = free_port()  # nothing listens there: the next sentinel is asked
        cfg = rl_route({"name": "sent", "mode": "redis", "on_redis_error": "fail_closed",
                        "redis": {"timeout": "2s", "sentinel": {
                            "master": "mymaster",
                            "addresses": [f"127.0.0.1:{dead}", f"127.0.0.1:{sentinel.port}"]}},
                        "limits": [{"rate": "3/h"}]})
        gh = gatehouse(cfg, workers=1)
        assert statuses(gh, 4) == [200, 200, 200, 429]
        assert resp_command(m1.port, "DBSIZE") == b":1"
        # "Failover": the sentinel now names another server, and the old master dies.
        m2 = RedisServer(tmp_path / "m2").start()
        sentinel.monitor(m2.port)
        m1.kill()
        # Reconnecting asks Sentinel again and lands on the new master (empty: 3 more).
        wait_until(lambda: statuses(gh, 1) == [200], timeout=20, message="re-discovery")
        assert resp_command(m2.port, "DBSIZE") == b":1"
        assert f"is 127.0.0.1:{m2.port}" in gh.stderr()
    finally:
        sentinel.stop()
        m1.stop()
        if m2:
            m2.stop()
