"""TLS on TCP listeners: passthrough routed by the ClientHello's SNI and ALPN to real
`openssl s_server` back-ends that hold their own certificates (the client sees each back-end's
certificate: the bytes went through untouched), a ClientHello sent a byte per segment,
refusals (not TLS, malformed, unknown SNI), the `sni` hash key and the access log. TLS
termination (`tls` on a TCP listener): to a plain echo server, with mTLS, and re-encrypted to
a TLS back-end."""
import socket
import ssl
import subprocess
import time

import pytest

from support import IO_TIMEOUT, free_port, stop_process, wait_until
from support.tcp import TcpServer, echo_handler
from test_tls import make_cert


class OpensslServer:
    """`openssl s_server -www` on 127.0.0.1 with its own certificate."""

    def __init__(self, cert, mode="-www"):
        self.cert = cert
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{self.port}", "-cert", cert[0],
             "-key", cert[1], mode, "-alpn", "h2,http/1.1,x-custom", "-quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def accepting():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(accepting, message=f"openssl s_server on {self.port}")

    def der(self):
        return ssl.PEM_cert_to_DER_cert(open(self.cert[0]).read())

    def stop(self):
        stop_process(self.proc)


@pytest.fixture
def backends(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    servers = {"a": OpensslServer(make_cert(d, "a", ["a.example.com"])),
               "b": OpensslServer(make_cert(d, "b", ["*.b.example"]))}
    yield servers
    for s in servers.values():
        s.stop()


def cluster_of(name, *servers, **extra):
    c = {"name": name, "endpoints": [{"host": "127.0.0.1", "port": s.port} for s in servers]}
    c.update(extra)
    return c


def passthrough_config(clusters, routes, default=None):
    tcp = {"tls_passthrough": {"routes": routes}}
    if default:
        tcp["cluster"] = default
    return {"clusters": clusters,
            "listeners": [{"name": "main", "address": "127.0.0.1", "port": "@main"},
                          {"name": "tls", "address": "127.0.0.1", "port": "@tls", "mode": "tcp",
                           "tcp": tcp}]}


def ab_config(backends, default=None):
    routes = [{"sni": "a.example.com", "cluster": "a"}, {"sni": "*.b.example", "cluster": "b"}]
    return passthrough_config([cluster_of("a", backends["a"]), cluster_of("b", backends["b"])],
                              routes, default)


def client_ctx(alpn=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def fetch(port, server_name, alpn=None):
    """A TLS handshake through the proxy and one GET: (peer certificate DER, response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        with client_ctx(alpn).wrap_socket(raw, server_hostname=server_name) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            body = b""
            while chunk := s.recv(65536):
                body += chunk
            return s.getpeercert(binary_form=True), body


def refused(port, send=None, server_name=None):
    """True when the proxy closes the connection without a byte back."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        try:
            if send is not None:
                s.sendall(send)
                return s.recv(1024) == b""
            with client_ctx().wrap_socket(s, server_hostname=server_name) as t:
                t.recv(1)
        except (ssl.SSLError, ConnectionError):
            return True
        return False


def test_sni_selects_the_backend_and_its_own_certificate(gatehouse, backends):
    g = gatehouse(ab_config(backends))
    port = g.extra_port("tls")
    for name, server in [("a.example.com", "a"), ("x.b.example", "b"), ("A.Example.COM", "a")]:
        der, body = fetch(port, name)
        assert der == backends[server].der(), name
        assert body.startswith(b"HTTP/1.0 200 ok"), body[:100]
    # openssl s_client too: the subject is the back-end's.
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        "y.b.example"], input=b"", capture_output=True, timeout=IO_TIMEOUT)
    assert b"subject=CN = *.b.example" in r.stdout, r.stdout[-2000:]
    line = g.wait_log(lambda e: e.get("kind") == "tcp" and e.get("sni") == "x.b.example")
    assert line["cluster"] == "b" and line["close_reason"] == "closed"
    assert line["upstream"] == f"127.0.0.1:{backends['b'].port}"


def test_alpn_chooses_among_the_routes_of_one_name(gatehouse, backends):
    routes = [{"sni": "a.example.com", "alpn": ["h2"], "cluster": "b"},
              {"sni": "a.example.com", "cluster": "a"},
              {"alpn": ["x-custom"], "cluster": "b"}]
    g = gatehouse(passthrough_config(
        [cluster_of("a", backends["a"]), cluster_of("b", backends["b"])], routes))
    port = g.extra_port("tls")
    assert fetch(port, "a.example.com", alpn=["h2"])[0] == backends["b"].der()
    assert fetch(port, "a.example.com", alpn=["http/1.1"])[0] == backends["a"].der()
    assert fetch(port, "a.example.com")[0] == backends["a"].der()
    # No route for the name: the routes without `sni` come next.
    assert fetch(port, "other.test", alpn=["x-custom"])[0] == backends["b"].der()
    assert refused(port, server_name="other.test")


def test_client_hello_one_byte_per_segment_still_routes(gatehouse, backends):
    g = gatehouse(ab_config(backends))
    port = g.extra_port("tls")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx().wrap_bio(incoming, outgoing, server_hostname="z.b.example")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert len(hello) > 100
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(hello)):
            s.send(hello[i:i + 1])
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
        assert tls.getpeercert(binary_form=True) == backends["b"].der()
    line = g.wait_log(lambda e: e.get("kind") == "tcp" and e.get("sni") == "z.b.example")
    assert line["cluster"] == "b"


def test_not_tls_malformed_and_unknown_sni_are_refused(gatehouse, backends):
    g = gatehouse(ab_config(backends))
    port = g.extra_port("tls")
    assert refused(port, send=b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
    # A handshake record whose ClientHello length runs past the record.
    assert refused(port, send=b"\x16\x03\x01\x00\x08\x01\x00\x01\x00\x03\x03\x00\x00")
    assert refused(port, server_name="c.example.com")
    assert refused(port, server_name="b.example")  # the wildcard needs one more label
    m = g.metrics()
    assert m.value("gatehouse_tcp_closes_total", listener="tls", reason="rejected") == 4
    line = g.wait_log(lambda e: e.get("kind") == "tcp" and e.get("sni") == "c.example.com")
    assert line["close_reason"] == "rejected" and line["cluster"] == "" and line["upstream"] == ""
    assert line["bytes_in"] == 0


def test_unknown_or_missing_sni_goes_to_the_default_cluster(gatehouse, backends):
    g = gatehouse(ab_config(backends, default="b"))
    port = g.extra_port("tls")
    assert fetch(port, "c.example.com")[0] == backends["b"].der()
    assert fetch(port, None)[0] == backends["b"].der()  # no SNI at all
    assert fetch(port, "a.example.com")[0] == backends["a"].der()
    assert refused(port, send=b"\x00not tls at all\r\n")


def test_sni_hash_key_keeps_a_name_on_one_host(gatehouse, backends):
    both = cluster_of("both", backends["a"], backends["b"], lb="ring_hash",
                      lb_options={"hash_key": "sni"})
    g = gatehouse(passthrough_config([both], [{"sni": "*.hash.test", "cluster": "both"}]))
    port = g.extra_port("tls")
    seen = {}
    for i in range(12):
        name = f"n{i}.hash.test"
        first = fetch(port, name)[0]
        assert all(fetch(port, name)[0] == first for _ in range(2)), name
        seen[name] = first
    assert len(set(seen.values())) == 2  # 12 names spread over both hosts


# -- TLS termination on TCP listeners: `tls` on a mode: tcp listener.

@pytest.fixture
def term_certs(tmp_path):
    d = tmp_path / "term"
    d.mkdir()
    ca = make_cert(d, "ca", ["Test CA"])
    return {"proxy": make_cert(d, "proxy", ["proxy.test"]), "ca": ca,
            "client": make_cert(d, "client", ["client.test"], ca=ca, client=True),
            "upstream": make_cert(d, "upstream", ["upstream.test"])}


def termination_config(cluster, tls):
    return {"clusters": [cluster],
            "listeners": [{"name": "main", "address": "127.0.0.1", "port": "@main"},
                          {"name": "tls", "address": "127.0.0.1", "port": "@tls", "mode": "tcp",
                           "tls": tls, "tcp": {"cluster": cluster["name"]}}]}


def tls_talk(port, message, cert=None):
    """Over TLS through the proxy: sends `message`, closes the writing side (close_notify and
    FIN), returns (the proxy's certificate DER, every byte until EOF)."""
    ctx = client_ctx()
    if cert:
        ctx.load_cert_chain(*cert)
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="proxy.test") as s:
            s.sendall(message)
            got = b""
            while len(got) < len(message) and (chunk := s.recv(65536)):
                got += chunk
            return s.getpeercert(binary_form=True), got


@pytest.fixture
def echo_server():
    s = TcpServer(echo_handler).start()
    yield s
    s.stop()


def test_termination_to_a_plain_echo_server(gatehouse, echo_server, term_certs):
    echo = echo_server
    tls = {"certificates": [{"cert": term_certs["proxy"][0], "key": term_certs["proxy"][1]}]}
    g = gatehouse(termination_config(cluster_of("echo", echo), tls))
    port = g.extra_port("tls")
    der, got = tls_talk(port, b"hello over tls\n" * 1000)
    assert der == ssl.PEM_cert_to_DER_cert(open(term_certs["proxy"][0]).read())
    assert got == b"hello over tls\n" * 1000
    line = g.wait_log(lambda e: e.get("kind") == "tcp" and e.get("listener") == "tls")
    assert line["cluster"] == "echo" and line["bytes_in"] == 15000


def test_termination_with_required_client_certificate(gatehouse, echo_server, term_certs):
    echo = echo_server
    tls = {"certificates": [{"cert": term_certs["proxy"][0], "key": term_certs["proxy"][1]}],
           "client_auth": "require", "client_ca": term_certs["ca"][0]}
    g = gatehouse(termination_config(cluster_of("echo", echo), tls))
    port = g.extra_port("tls")
    assert tls_talk(port, b"ping", cert=term_certs["client"])[1] == b"ping"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        got = tls_talk(port, b"ping")[1]
        assert got == b""  # TLS 1.3: the refusal may only show on the first read
        raise ConnectionError("closed")
    assert g.metrics().value("gatehouse_tcp_closes_total", listener="tls", reason="rejected") == 1


def test_termination_re_encrypted_to_a_tls_upstream(gatehouse, term_certs):
    upstream = OpensslServer(term_certs["upstream"], mode="-rev")
    try:
        cluster = cluster_of("secure", upstream,
                             tls={"ca": term_certs["upstream"][0], "sni": "upstream.test"})
        tls = {"certificates": [{"cert": term_certs["proxy"][0], "key": term_certs["proxy"][1]}]}
        g = gatehouse(termination_config(cluster, tls))
        der, got = tls_talk(g.extra_port("tls"), b"gatehouse\n")
        assert got == b"esuohetag\n"  # s_server -rev: the line reversed, over its own TLS
        assert der == ssl.PEM_cert_to_DER_cert(open(term_certs["proxy"][0]).read())
    finally:
        upstream.stop()
