"""TLS termination: SNI certificate selection, ALPN, protocol versions, plain HTTP on a TLS
port, mutual TLS, certificate reload without dropping connections, https forwarding headers."""
import json
import socket
import ssl
import subprocess

import pytest

from support import GATEHOUSE_BIN, IO_TIMEOUT, cluster, simple_config
from test_basics import upstream_headers


def make_cert(d, name, sans, ca=None, client=False):
    """A P-256 certificate for `sans` (self-signed, or signed by ca=(crt, key))."""
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    san = ",".join(f"DNS:{s}" for s in sans)
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", f"/CN={sans[0]}", "-addext",
                        f"subjectAltName={san}"], check=True, capture_output=True)
    else:
        csr = d / f"{name}.csr"
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                        "-subj", f"/CN={sans[0]}"], check=True, capture_output=True)
        ext = d / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\n" +
                       ("extendedKeyUsage=clientAuth\n" if client else ""))
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext],
                       check=True, capture_output=True)
    return str(crt), str(key)


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    a = make_cert(d, "a", ["a.test", "*.wild.test"])
    b = make_cert(d, "b", ["b.test"])
    ca = make_cert(d, "ca", ["Test CA"])
    client = make_cert(d, "client", ["client.test"], ca=ca, client=True)
    return {"a": a, "b": b, "ca": ca, "client": client, "dir": d}


def tls_config(certs, upstream, **tls_extra):
    tls = {"certificates": [{"cert": certs["a"][0], "key": certs["a"][1]},
                            {"cert": certs["b"][0], "key": certs["b"][1]}]}
    tls.update(tls_extra)
    return simple_config(cluster("up", upstream),
                         listeners=[{"name": "main", "address": "127.0.0.1", "port": "@main",
                                     "tls": tls}])


def client_ctx(cafile=None, alpn=("http/1.1",), maxv=None, cert=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if cafile is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if maxv:
        ctx.maximum_version = maxv
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def tls_get(port, server_name, ctx, path="/", extra_requests=0):
    """Opens a TLS connection, sends 1 + extra_requests keep-alive GETs; returns
    (peer cert subject CN, negotiated ALPN, [(status, body)])."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            cert = s.getpeercert(binary_form=True)
            der_cn = ssl.DER_cert_to_PEM_cert(cert)
            results = []
            f = s.makefile("rb")
            for _ in range(1 + extra_requests):
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\n\r\n".encode())
                status = int(f.readline().split()[1])
                length = 0
                while True:
                    line = f.readline()
                    if line in (b"\r\n", b""):
                        break
                    k, _, v = line.decode().partition(":")
                    if k.lower() == "content-length":
                        length = int(v)
                results.append((status, f.read(length)))
            return der_cn, s.selected_alpn_protocol(), results


def subject_cn(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(),
                         capture_output=True, check=True).stdout.decode()
    return out.strip().split("CN", 1)[1].lstrip(" =")


def test_sni_selects_certificate_and_wildcard(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo))
    for name, expect in [("a.test", "a.test"), ("b.test", "b.test"), ("x.wild.test", "a.test"),
                         ("unknown.test", "a.test")]:
        pem, alpn, results = tls_get(gh.port, name, client_ctx())
        assert subject_cn(pem) == expect, name
        assert results[0][0] == 200
    # The chosen certificate verifies against its own CA file with hostname checking on.
    pem, _, results = tls_get(gh.port, "b.test", client_ctx(cafile=certs["b"][0]))
    assert results[0][0] == 200


def test_alpn_http11_and_keepalive_over_tls(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo))
    _, alpn, results = tls_get(gh.port, "a.test", client_ctx(alpn=("h2", "http/1.1")),
                               path="/k", extra_requests=4)
    assert alpn == "http/1.1"
    assert [r[0] for r in results] == [200] * 5
    seen = upstream_headers(json.loads(results[0][1]))
    assert seen["x-forwarded-proto"] == ["https"]


def test_old_tls_versions_are_refused(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo))
    ctx = client_ctx()
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        tls_get(gh.port, "a.test", ctx)
    ok = tls_get(gh.port, "a.test", client_ctx(maxv=ssl.TLSVersion.TLSv1_2))
    assert ok[2][0][0] == 200
    assert gh.metrics().value("gatehouse_tls_handshake_failures_total") >= 1


def test_tls13_only_listener_refuses_tls12(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo, min_version="1.3"))
    with pytest.raises(ssl.SSLError):
        tls_get(gh.port, "a.test", client_ctx(maxv=ssl.TLSVersion.TLSv1_2))
    assert tls_get(gh.port, "a.test", client_ctx())[2][0][0] == 200


def test_plain_http_on_tls_port_gets_a_clear_error(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo))
    with socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"expects TLS" in data


def test_mtls_required(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo, client_auth="require", client_ca=certs["ca"][0]))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_get(gh.port, "a.test", client_ctx())
    ok = tls_get(gh.port, "a.test", client_ctx(cert=certs["client"]))
    assert ok[2][0][0] == 200
    # A certificate from another CA is refused.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_get(gh.port, "a.test", client_ctx(cert=certs["b"]))


def test_mtls_optional_accepts_both(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo, client_auth="optional", client_ca=certs["ca"][0]))
    assert tls_get(gh.port, "a.test", client_ctx())[2][0][0] == 200
    assert tls_get(gh.port, "a.test", client_ctx(cert=certs["client"]))[2][0][0] == 200


def test_bad_key_is_a_config_error(tmp_path, certs):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(json.dumps({
        "listeners": [{"address": "127.0.0.1", "port": 1443, "tls": {"certificates": [
            {"cert": certs["a"][0], "key": certs["b"][1]}]}}],
        "routes": [{"match": {"path_prefix": "/"}, "direct_response": {"status": 200}}]}))
    r = subprocess.run([GATEHOUSE_BIN, "validate", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "does not match certificate" in r.stderr
    assert "listeners[0].tls" in r.stderr
    cfg.write_text(cfg.read_text().replace(certs["b"][1], str(tmp_path / "missing.key")))
    r = subprocess.run([GATEHOUSE_BIN, "validate", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 1 and "cannot load key" in r.stderr


def test_certificate_reload_keeps_open_connections(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo))
    ctx = client_ctx()
    raw = socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT)
    old = ctx.wrap_socket(raw, server_hostname="a.test")
    f = old.makefile("rb")

    def get_on_old():
        old.sendall(b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
        status = int(f.readline().split()[1])
        length = 0
        while (line := f.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
        f.read(length)
        return status

    try:
        assert get_on_old() == 200
        # Replace a.test's certificate files with a new one and reload.
        new_crt, new_key = make_cert(certs["dir"], "a2", ["a.test", "renewed.test"])
        with open(new_crt) as src, open(certs["a"][0], "w") as dst:
            dst.write(src.read())
        with open(new_key) as src, open(certs["a"][1], "w") as dst:
            dst.write(src.read())
        assert gh.reload() == "success"
        pem, _, results = tls_get(gh.port, "renewed.test", client_ctx())
        assert results[0][0] == 200
        names = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"],
                               input=pem.encode(), capture_output=True).stdout
        assert b"renewed.test" in names
        assert get_on_old() == 200  # the connection made before the reload still works
    finally:
        old.close()
