"""Policy cert_auth: a verified TLS client certificate identifies a consumer of the registry by
its SHA-256 fingerprint, a subjectAltName entry or its subject; acl, rate_limit, quota and
metering then work with that identity as with API keys. Real certificates from openssl."""
import json
import ssl
import subprocess

import httpx
import pytest

from support import GATEHOUSE_BIN, IO_TIMEOUT, cluster, simple_config, wait_until
from test_basics import upstream_headers


def make_cert(d, name, cn, san=None, ca=None):
    """A P-256 certificate with subject CN=`cn` and subjectAltName `san` (openssl syntax),
    self-signed, or signed by ca=(crt, key) for client authentication."""
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", f"/CN={cn}"] +
                       (["-addext", f"subjectAltName={san}"] if san else []),
                       check=True, capture_output=True)
        return str(crt), str(key)
    csr, ext = d / f"{name}.csr", d / f"{name}.ext"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", f"/CN={cn}"], check=True, capture_output=True)
    ext.write_text((f"subjectAltName={san}\n" if san else "") + "extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                    "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext],
                   check=True, capture_output=True)
    return str(crt), str(key)


def fingerprint(crt):
    """As `openssl x509 -fingerprint -sha256` prints it: AB:CD:..."""
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", crt],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1]


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    ca = make_cert(d, "ca", "Client CA")
    return {
        "server": make_cert(d, "server", "gw.test", san="DNS:gw.test"),
        "ca": ca,
        "alice": make_cert(d, "alice", "alice.test", ca=ca),
        "bob": make_cert(d, "bob", "bob.test",
                         san="URI:spiffe://example.test/bob,DNS:bob.test", ca=ca),
        "carol": make_cert(d, "carol", "carol.test", ca=ca),
        "stranger": make_cert(d, "stranger", "stranger.test", san="DNS:stranger.test", ca=ca),
    }


def consumers(certs):
    return [
        {"name": "alice", "groups": ["admins"],
         "credentials": {"certificates": [{"sha256": fingerprint(certs["alice"][0])}]}},
        {"name": "bob", "credentials": {"certificates": [
            {"san": "URI:spiffe://example.test/bob"}]}},
        {"name": "carol", "credentials": {"certificates": [{"subject": "CN=carol.test"}]}},
    ]


def cert_config(certs, upstream):
    auth = {"name": "cert_auth", "config": {"consumer_header": "x-consumer"}}

    def route(name, prefix, *policies):
        return {"name": name, "match": {"path_prefix": prefix}, "cluster": "up",
                "policies": [auth, *policies]}
    routes = [
        route("admin", "/admin", {"name": "acl", "config": {"allow": {"groups": ["admins"]}}}),
        route("limited", "/limited", {"name": "rate_limit", "config": {
            "key": ["consumer"], "limits": [{"rate": "2/h"}]}}),
        route("quota", "/quota", {"name": "metering", "config": {}},
              {"name": "quota", "config": {"name": "plan",
                                           "limits": [{"limit": 1, "period": "day"}]}}),
        route("all", "/"),
    ]
    tls = {"certificates": [{"cert": certs["server"][0], "key": certs["server"][1]}],
           "client_auth": "optional", "client_ca": certs["ca"][0]}
    return simple_config(cluster("up", upstream), routes=routes, consumers=consumers(certs),
                         listeners=[{"name": "main", "address": "127.0.0.1", "port": "@main",
                                     "tls": tls}])


def client(gh, cert=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    return httpx.Client(base_url=f"https://127.0.0.1:{gh.port}", verify=ctx, timeout=IO_TIMEOUT)


def rejections(gh, reason):
    return gh.metrics().get_value("gatehouse_auth_rejections_total", policy="cert_auth",
                                  reason=reason) or 0


def test_certificate_identifies_consumer_by_fingerprint_san_or_subject(gatehouse, echo, certs):
    gh = gatehouse(cert_config(certs, echo))
    for who in ("alice", "bob", "carol"):
        with client(gh, certs[who]) as c:
            r = c.get("/x", headers={"x-consumer": "mallory"})
            assert r.status_code == 200, (who, r.text)
            assert upstream_headers(r.json())["x-consumer"] == [who]  # the spoof was replaced
    # No certificate, or a valid one that names no consumer: 401, counted by reason.
    with client(gh) as c:
        r = c.get("/x")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'MutualTLS realm="gatehouse"'
    with client(gh, certs["stranger"]) as c:
        assert c.get("/x").status_code == 401
    assert rejections(gh, "missing") == 1
    assert rejections(gh, "bad_credentials") == 1
    assert echo.request_count() == 3


def test_certificate_identity_drives_acl_rate_limit_quota_and_metering(gatehouse, echo, certs):
    gh = gatehouse(cert_config(certs, echo), workers=2)
    with client(gh, certs["alice"]) as alice, client(gh, certs["bob"]) as bob:
        assert alice.get("/admin").status_code == 200
        assert bob.get("/admin").status_code == 403  # not in group admins
        # 2 per hour per consumer: alice's use does not count against bob.
        assert [alice.get("/limited").status_code for _ in range(3)] == [200, 200, 429]
        assert [bob.get("/limited").status_code for _ in range(3)] == [200, 200, 429]
        assert [alice.get("/quota").status_code for _ in range(2)] == [200, 429]
        assert bob.get("/quota").status_code == 200

    def usage():
        m = gh.metrics()
        v = {who: m.get_value("gatehouse_usage_requests_total", route="quota", consumer=who)
             for who in ("alice", "bob")}
        return v if v == {"alice": 2, "bob": 1} else None
    wait_until(usage, message="metering by certificate consumer")


def test_certificate_credentials_config_errors(tmp_path, certs):
    def validate(consumer_list, policy_config=None):
        cfg = simple_config(cluster("up", "127.0.0.1:1"), consumers=consumer_list, routes=[
            {"name": "r", "match": {"path_prefix": "/"}, "cluster": "up",
             "policies": [{"name": "cert_auth", "config": policy_config or {}}]}])
        path = tmp_path / "c.yaml"
        path.write_text(json.dumps(cfg))
        r = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True,
                           text=True, timeout=30)
        return r.returncode, r.stderr + r.stdout

    rc, out = validate([{"name": "a", "credentials": {"certificates": [{"sha256": "abc"}]}}])
    assert rc != 0 and "64 hex digits" in out, out
    rc, out = validate([{"name": "a", "credentials": {"certificates": [{"san": "spiffe://x"}]}}])
    assert rc != 0 and "DNS:<name>, URI:<uri> or email:<address>" in out, out
    rc, out = validate([{"name": "a", "credentials": {"certificates": [
        {"subject": "CN=a", "san": "DNS:a"}]}}])
    assert rc != 0 and "exactly one of sha256, subject, san" in out, out
    rc, out = validate([
        {"name": "a", "credentials": {"certificates": [{"subject": "CN=a"}]}},
        {"name": "b", "credentials": {"certificates": [{"subject": "CN=a"}]}}])
    assert rc != 0 and "duplicate certificate subject" in out, out
    rc, out = validate([{"name": "a", "credentials": {"certificates": [{"subject": "CN=a"}]}},
                        {"name": "b"}], {"consumers": ["b"]})
    assert rc != 0 and "has no certificate credentials" in out, out
    rc, out = validate([{"name": "a", "credentials": {"certificates": [{"subject": "CN=a"}]}}])
    assert rc == 0, out
