"""TLS termination: SNI certificate selection, ALPN, protocol versions, plain HTTP on a TLS
port, mutual TLS, certificate reload without dropping connections, https forwarding headers."""
import json
import socket
import ssl
import subprocess
import threading
import time

import httpx
import pytest

from support import GATEHOUSE_BIN, IO_TIMEOUT, cluster, simple_config, wait_until
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
    # A listener limited to http/1.1 never selects h2, even when the client prefers it.
    gh = gatehouse(tls_config(certs, echo, alpn=["http/1.1"]))
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


def test_client_hang_up_over_tls_abandons_the_upstream_request(gatehouse, certs):
    """A TLS client that closes (close_notify, then FIN) while its request waits for a slow
    upstream: the upstream connection is closed long before its 5 s answer."""
    from test_aggregate import Service  # (test_aggregate imports this module: not at the top)
    slow = Service({"/slow": (200, {"ok": True}, 5.0)})
    try:
        gh = gatehouse(tls_config(certs, slow))
        raw = socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT)
        s = client_ctx().wrap_socket(raw, server_hostname="a.test")
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert slow.started.wait(10), "the request reached the slow upstream"
        t0 = time.monotonic()
        s.close()
        wait_until(lambda: "/slow" in slow.abandoned, timeout=4.0,
                   message="slow upstream saw its connection closed")
        assert time.monotonic() - t0 < 4.0
    finally:
        slow.stop()


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


def test_verified_client_certificate_is_forwarded_and_spoofs_removed(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo, client_auth="optional", client_ca=certs["ca"][0],
                              forward_client_cert=True))

    def seen(cert):
        with socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT) as raw:
            with client_ctx(cert=cert).wrap_socket(raw, server_hostname="a.test") as s:
                s.sendall(b"GET /c HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n"
                          b"X-Client-Cert-Subject: CN=admin\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        return upstream_headers(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    with_cert = seen(certs["client"])
    assert with_cert["x-client-cert-subject"] == ["CN=client.test"]
    assert with_cert["x-client-cert-san"] == ["DNS:client.test"]
    assert len(with_cert["x-client-cert-sha256"][0]) == 64
    without = seen(None)
    assert "x-client-cert-subject" not in without  # the spoofed header was dropped


class TlsEchoServer:
    """HTTP/1.1 echo over TLS (Python's ssl); optionally requires a client certificate."""

    def __init__(self, cert, key, client_ca=None):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                peer = self.connection.getpeercert()
                body = json.dumps({"path": self.path,
                                   "client_cert": bool(peer)}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def tls_upstream(certs):
    servers = []

    def make(**kw):
        ca = certs["ca"]
        srv_cert = make_cert(certs["dir"], f"up{len(servers)}", ["upstream.test"], ca=ca)
        s = TlsEchoServer(srv_cert[0], srv_cert[1], **kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


def plain_get(gh, path="/u"):
    with socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_upstream_tls_verified_and_pooled(gatehouse, tls_upstream, certs):
    up = tls_upstream()
    gh = gatehouse(simple_config(cluster("sec", f"127.0.0.1:{up.port}",
                                         tls={"sni": "upstream.test", "ca": certs["ca"][0]})))
    for _ in range(3):
        status, body = plain_get(gh)
        assert status == 200 and json.loads(body)["path"] == "/u"
    m = gh.metrics()
    assert m.value("gatehouse_upstream_pool_reused_total", cluster="sec") >= 1


def test_upstream_tls_wrong_name_or_ca_is_502(gatehouse, tls_upstream, certs):
    up = tls_upstream()
    gh = gatehouse(simple_config(cluster("bad", f"127.0.0.1:{up.port}",
                                         tls={"sni": "other.test", "ca": certs["ca"][0]})))
    status, body = plain_get(gh)
    assert status == 502 and b"TLS" in body
    gh2 = gatehouse(simple_config(cluster("bad", f"127.0.0.1:{up.port}",
                                          tls={"sni": "upstream.test", "ca": certs["a"][0]})))
    assert plain_get(gh2)[0] == 502
    gh3 = gatehouse(simple_config(cluster("insecure", f"127.0.0.1:{up.port}",
                                          tls={"verify": False})))
    assert plain_get(gh3)[0] == 200


def test_upstream_mtls_client_certificate(gatehouse, tls_upstream, certs):
    up = tls_upstream(client_ca=certs["ca"][0])
    base = {"sni": "upstream.test", "ca": certs["ca"][0]}
    gh = gatehouse(simple_config(cluster("nocert", f"127.0.0.1:{up.port}", tls=base)))
    assert plain_get(gh)[0] == 502
    with_cert = dict(base, cert=certs["client"][0], key=certs["client"][1])
    gh2 = gatehouse(simple_config(cluster("mtls", f"127.0.0.1:{up.port}", tls=with_cert)))
    status, body = plain_get(gh2)
    assert status == 200 and json.loads(body)["client_cert"] is True


def test_session_resumption_with_tickets(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo, max_version="1.2"))
    ctx = client_ctx()
    with socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass
            session = s.session
    assert session is not None and session.has_ticket
    # A new connection (possibly on the other worker) resumes with the ticket.
    with socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test", session=session) as s:
            assert s.session_reused


def test_ocsp_response_is_stapled(gatehouse, echo, certs, tmp_path):
    d = certs["dir"]
    ca_crt, ca_key = certs["ca"]
    leaf = make_cert(d, "stapled", ["stapled.test"], ca=certs["ca"])
    serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", leaf[0]],
                            capture_output=True, text=True, check=True).stdout.strip().split("=")[1]
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "compat",
                              "-in", leaf[0]], capture_output=True, text=True,
                             check=True).stdout.strip().split("=", 1)[1].strip()
    (d / "index.txt").write_text(f"V\t300101000000Z\t\t{serial}\tunknown\t{subject}\n")
    resp = d / "ocsp.der"
    subprocess.run(["openssl", "ocsp", "-index", d / "index.txt", "-rsigner", ca_crt, "-rkey",
                    ca_key, "-CA", ca_crt, "-issuer", ca_crt, "-cert", leaf[0], "-respout", resp,
                    "-ndays", "1"], check=True, capture_output=True)
    cfg = simple_config(cluster("up", echo), listeners=[{
        "name": "main", "address": "127.0.0.1", "port": "@main",
        "tls": {"certificates": [{"cert": leaf[0], "key": leaf[1], "ocsp": str(resp)}]}}])
    gh = gatehouse(cfg)
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{gh.port}",
                          "-servername", "stapled.test", "-status"], input="",
                         capture_output=True, text=True, timeout=30)
    assert "OCSP Response Status: successful" in out.stdout, out.stdout[-2000:]
    # A file that is not an OCSP response is a config error.
    bad = dict(cfg)
    (tmp_path / "junk.der").write_bytes(b"junk")
    bad["listeners"] = [{"name": "main", "address": "127.0.0.1", "port": 1, "tls": {
        "certificates": [{"cert": leaf[0], "key": leaf[1], "ocsp": str(tmp_path / "junk.der")}]}}]
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(bad))
    r = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True)
    assert r.returncode == 1 and "not a DER OCSP response" in r.stderr


def test_https_redirect_listener(gatehouse, echo, certs):
    cfg = tls_config(certs, echo)
    cfg["listeners"].append({"name": "plain", "address": "127.0.0.1", "port": "@plain",
                             "https_redirect": {"port": 8443, "status": 301}})
    cfg["listeners"].append({"name": "plain443", "address": "127.0.0.1", "port": "@plain443",
                             "https_redirect": True})
    gh = gatehouse(cfg)
    plain = gh.extra_port("plain")
    r = httpx.get(f"http://127.0.0.1:{plain}/a/b?x=1", headers={"host": f"a.test:{plain}"},
                  timeout=IO_TIMEOUT, follow_redirects=False)
    assert r.status_code == 301
    assert r.headers["location"] == "https://a.test:8443/a/b?x=1"
    r = httpx.get(f"http://127.0.0.1:{gh.extra_port('plain443')}/p", timeout=IO_TIMEOUT,
                  headers={"host": "[::1]:80"}, follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "https://[::1]/p"
    assert echo.request_count() == 0  # nothing was proxied


def test_https_redirect_on_a_tls_listener_is_a_config_error(tmp_path, certs):
    cfg = tls_config(certs, "127.0.0.1:1")
    cfg["listeners"][0]["port"] = 8443
    cfg["listeners"][0]["https_redirect"] = True
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(cfg))
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "listeners[0].https_redirect" in out.stdout + out.stderr


def test_certificate_reload_under_load(gatehouse, echo, certs):
    gh = gatehouse(tls_config(certs, echo))
    stop = threading.Event()
    failures, done = [], [0]

    def load():
        while not stop.is_set():
            try:
                _, _, results = tls_get(gh.port, "a.test", client_ctx(), extra_requests=2)
                if [r[0] for r in results] != [200] * 3:
                    failures.append(results)
                done[0] += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                failures.append(repr(e))
    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            before = done[0]
            new_crt, new_key = make_cert(certs["dir"], f"r{i}", ["a.test", f"r{i}.test"])
            with open(new_crt) as src, open(certs["a"][0], "w") as dst:
                dst.write(src.read())
            with open(new_key) as src, open(certs["a"][1], "w") as dst:
                dst.write(src.read())
            assert gh.reload() == "success"
            wait_until(lambda: done[0] >= before + 3)
    finally:
        stop.set()
        for t in threads:
            t.join(IO_TIMEOUT * 2)
    assert failures == []
    assert done[0] >= 15
