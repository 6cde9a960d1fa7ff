"""A mixed port: one HTTP listener with `tls` and `tcp.tls_passthrough`. A ClientHello whose
SNI names one of its virtual hosts is served by gatehouse's HTTP stack (its own certificate,
HTTP/1.1 and h2 by ALPN); any other is passed through, untouched, to an `openssl s_server`
back-end (the client sees that back-end's certificate). Unknown names without a default, a
malformed ClientHello and a ClientHello split over many segments; a reload with a passthrough
connection open; a PROXY header in front of the ClientHello."""
import socket
import ssl
import subprocess
import time

import pytest

from support import IO_TIMEOUT, wait_until
from test_l4_tls import OpensslServer, cluster_of, client_ctx, fetch, refused
from test_proxy_protocol import v1, v2
from test_tls import make_cert


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    return {"gatehouse": make_cert(d, "gatehouse", ["a.example", "*.a.example"]),
            "b": make_cert(d, "b", ["b.example"])}


@pytest.fixture
def backend_b(certs):
    s = OpensslServer(certs["b"])
    yield s
    s.stop()


def der_of(cert):
    return ssl.PEM_cert_to_DER_cert(open(cert[0]).read())


def mixed_config(certs, backend, default=None, body="from-l7"):
    tcp = {"tls_passthrough": {"routes": [{"sni": "b.example", "cluster": "b"}]}}
    if default:
        tcp["cluster"] = default
    tls = {"certificates": [{"cert": certs["gatehouse"][0], "key": certs["gatehouse"][1]}]}
    return {"clusters": [cluster_of("b", backend)],
            "virtual_hosts": [{"name": "site", "domains": ["a.example", "*.a.example"],
                               "routes": [{"name": "local", "match": {"path_prefix": "/"},
                                           "direct_response": {"status": 200, "body": body}}]}],
            "listeners": [{"name": "main", "address": "127.0.0.1", "port": "@main"},
                          {"name": "edge", "address": "127.0.0.1", "port": "@edge",
                           "tls": tls, "virtual_hosts": ["site"], "tcp": tcp}]}


def curl(port, name, *args):
    r = subprocess.run(["curl", "-sk", "--max-time", str(IO_TIMEOUT), "--resolve",
                        f"{name}:{port}:127.0.0.1", "-o", "-", "-w", "\n%{http_version}",
                        *args, f"https://{name}:{port}/x"],
                       capture_output=True, timeout=IO_TIMEOUT + 5)
    body, _, version = r.stdout.rpartition(b"\n")
    return r.returncode, body, version.decode()


def test_virtual_host_names_are_http_others_pass_through(gatehouse, certs, backend_b):
    g = gatehouse(mixed_config(certs, backend_b))
    port = g.extra_port("edge")
    # HTTP, both protocols, on gatehouse's own certificate.
    assert curl(port, "a.example", "--http1.1") == (0, b"from-l7", "1.1")
    assert curl(port, "x.a.example", "--http2") == (0, b"from-l7", "2")
    der, body = fetch(port, "a.example", alpn=["http/1.1"])
    assert der == der_of(certs["gatehouse"])
    # fetch() sends no Host: gatehouse's own 404 (virtual hosts match the Host, not the SNI).
    assert body.startswith(b"HTTP/1.1 404") and b"no route matches" in body, body
    # Passed through: the back-end's certificate and its own `-www` page.
    der, body = fetch(port, "b.example", alpn=["h2", "http/1.1"])
    assert der == der_of(certs["b"])
    assert body.startswith(b"HTTP/1.0 200 ok"), body[:100]
    line = g.wait_log(lambda e: e.get("kind") == "tcp" and e.get("sni") == "b.example")
    assert line["listener"] == "edge" and line["cluster"] == "b"
    assert line["upstream"] == f"127.0.0.1:{backend_b.port}"


def test_unknown_name_refused_without_default_and_passed_with_one(gatehouse, certs, backend_b):
    g = gatehouse(mixed_config(certs, backend_b))
    port = g.extra_port("edge")
    assert refused(port, server_name="c.example")
    assert refused(port, server_name=None)
    assert g.metrics().value("gatehouse_tcp_closes_total", listener="edge",
                             reason="rejected") == 2
    g2 = gatehouse(mixed_config(certs, backend_b, default="b"), name="gh2")
    port2 = g2.extra_port("edge")
    assert fetch(port2, "c.example")[0] == der_of(certs["b"])
    assert fetch(port2, None)[0] == der_of(certs["b"])
    assert fetch(port2, "a.example")[0] == der_of(certs["gatehouse"])


def client_hello(server_name):
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx(["http/1.1"]).wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def handshake_split(port, server_name, segment=1):
    """A TLS handshake whose ClientHello goes out `segment` bytes per TCP segment; returns the
    peer's certificate DER, the socket and (SSLObject, incoming BIO, outgoing BIO) for more."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx(["http/1.1"]).wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert len(hello) > 100
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(hello), segment):
        s.send(hello[i:i + segment])
        time.sleep(0.001)  # one segment each, not a synchronisation
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if out := outgoing.read():
                s.sendall(out)
            data = s.recv(65536)
            assert data, "closed during the handshake"
            incoming.write(data)
            assert time.monotonic() < deadline
    if out := outgoing.read():
        s.sendall(out)
    return tls.getpeercert(binary_form=True), s, (tls, incoming, outgoing)


def test_client_hello_split_over_segments_reaches_either_side(gatehouse, certs, backend_b):
    g = gatehouse(mixed_config(certs, backend_b))
    port = g.extra_port("edge")
    der, s, _ = handshake_split(port, "b.example")
    s.close()
    assert der == der_of(certs["b"])
    der, s, (tls, incoming, outgoing) = handshake_split(port, "a.example", segment=7)
    with s:
        assert der == der_of(certs["gatehouse"])
        # The HTTP session read the ClientHello the peek left in place: a request works.
        tls.write(b"GET /x HTTP/1.1\r\nhost: a.example\r\nconnection: close\r\n\r\n")
        s.sendall(outgoing.read())
        got = b""
        while data := s.recv(65536):
            incoming.write(data)
            try:
                while chunk := tls.read(65536):
                    got += chunk
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
        assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"from-l7"), got


def test_malformed_client_hello_and_plain_http(gatehouse, certs, backend_b):
    g = gatehouse(mixed_config(certs, backend_b, default="b"))
    port = g.extra_port("edge")
    # Refused, even with a default cluster: a handshake record that is not a ClientHello, and
    # a real ClientHello whose server name is not a host name.
    assert refused(port, send=b"\x16\x03\x01\x00\x04\x02\x00\x00\x00")
    hello = client_hello("a.example")
    assert b"a.example" in hello
    assert refused(port, send=hello.replace(b"a.example", b"a.ex/mple"))
    assert g.metrics().value("gatehouse_tcp_closes_total", listener="edge",
                             reason="rejected") == 2
    # The same ClientHello unmodified is HTTP's: the peek, not the name, refused the others.
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        s.sendall(hello)
        assert s.recv(5)[:1] == b"\x16", "a ServerHello"
    # Plain HTTP to the TLS port gets the L7 listener's readable answer.
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nhost: a.example\r\n\r\n")
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    assert got.startswith(b"HTTP/1.1 400") and b"expects TLS" in got, got


def test_reload_keeps_open_connections_and_applies_to_new_ones(gatehouse, certs, backend_b):
    g = gatehouse(mixed_config(certs, backend_b))
    port = g.extra_port("edge")
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        with client_ctx().wrap_socket(raw, server_hostname="b.example") as held:
            assert held.getpeercert(binary_form=True) == der_of(certs["b"])
            cfg = mixed_config(certs, backend_b, body="from-l7-v2")
            cfg["listeners"][1]["tcp"]["tls_passthrough"]["routes"] = [
                {"sni": "c.example", "cluster": "b"}]
            g.write_config(cfg)
            assert g.reload() == "success"
            # New connections follow the new config, on every worker...
            wait_until(lambda: curl(port, "a.example", "--http2") == (0, b"from-l7-v2", "2")
                       and all(refused(port, server_name="b.example") for _ in range(4)),
                       message="the new config on the mixed port")
            # ...while the passthrough connection opened before keeps its back-end.
            held.sendall(b"GET / HTTP/1.0\r\n\r\n")
            body = b""
            while chunk := held.recv(65536):
                body += chunk
            assert body.startswith(b"HTTP/1.0 200 ok"), body[:100]
    # (s_server serves one connection at a time: the held one has ended.)
    assert fetch(port, "c.example")[0] == der_of(certs["b"])


@pytest.mark.parametrize("header", ["v1", "v2"])
def test_proxy_header_before_the_client_hello(gatehouse, certs, backend_b, header):
    cfg = mixed_config(certs, backend_b)
    cfg["listeners"][1]["proxy_protocol"] = {"trusted": ["127.0.0.1/32"]}
    g = gatehouse(cfg)
    port = g.extra_port("edge")
    hdr = v1("203.0.113.9", sport=41000) if header == "v1" else v2("203.0.113.9", sport=41000)

    def handshake(name):
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        raw.sendall(hdr)
        return client_ctx(["http/1.1"]).wrap_socket(raw, server_hostname=name)

    with handshake("a.example") as s:
        assert s.getpeercert(binary_form=True) == der_of(certs["gatehouse"])
        s.sendall(b"GET /x HTTP/1.1\r\nhost: a.example\r\nconnection: close\r\n\r\n")
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"from-l7"), got
    line = g.wait_log(lambda e: e.get("kind") != "tcp" and e.get("status") == 200)
    assert line["client_ip"] == "203.0.113.9", line
    with handshake("b.example") as s:
        assert s.getpeercert(binary_form=True) == der_of(certs["b"])
    line = g.wait_log(lambda e: e.get("kind") == "tcp" and e.get("sni") == "b.example")
    assert line["client"] == "203.0.113.9:41000"
