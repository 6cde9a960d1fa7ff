"""PROXY protocol (v1 and v2) on listeners: the header's source becomes the client for the access
log, X-Forwarded-For and IP rules; a missing or malformed header from a trusted source, a header
from an untrusted source and a version the listener does not accept close the connection
(counted by reason); on a TLS listener the header comes before the ClientHello. And clusters
that send a PROXY header to their upstreams, checked by a capture server."""
import json
import socket
import ssl
import struct
import threading

import pytest

from support import IO_TIMEOUT, RawConn, cluster, request_bytes, simple_config, wait_until
from test_auth_policies import upstream_headers
from test_tls import make_cert

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst="127.0.0.1", sport=40000, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src, dst="127.0.0.1", sport=40000, dport=80, tlvs=b"", command=0x21):
    if ":" in src:
        fam, addrs = 0x21, socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(
            socket.AF_INET6, dst)
    else:
        fam, addrs = 0x11, socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([command, fam]) + struct.pack("!H", len(body)) + body


def listener(trusted=("127.0.0.1/32",), versions=None, **extra):
    pp = {"trusted": list(trusted)}
    if versions:
        pp["versions"] = versions
    return [{"name": "main", "address": "127.0.0.1", "port": "@main", "proxy_protocol": pp,
             **extra}]


def config(echo, policies=(), **pp):
    return simple_config(cluster("echo", echo), routes=[
        {"name": "all", "match": {"path_prefix": "/"}, "cluster": "echo",
         "policies": list(policies)}], listeners=listener(**pp))


def refused(gh, reason):
    return gh.metrics().value("gatehouse_proxy_protocol_refused_total", reason=reason)


def assert_refused(gh, payload, reason, before):
    with RawConn(gh.port) as c:
        c.send(payload)
        assert c.read_to_close() == b"", "closed without an answer"
    wait_until(lambda: refused(gh, reason) == before + 1, message=f"refused{{{reason}}} + 1")


def get_via(gh, header, path="/x", host="gh.test"):
    with RawConn(gh.port) as c:
        c.send(header + request_bytes("GET", path, host=host))
        return c.read_response()


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
def test_trusted_header_sets_the_client_address(gatehouse, echo, make):
    gh = gatehouse(config(echo))
    r = get_via(gh, make("203.0.113.7"), path="/who")
    assert r.status == 200
    assert upstream_headers(r.json())["x-forwarded-for"] == ["203.0.113.7"]
    line = gh.wait_log(lambda e: e.get("path") == "/who")
    assert line["client_ip"] == "203.0.113.7"
    assert gh.metrics().value("gatehouse_proxy_protocol_accepted_total") == 1


def test_ipv6_source_and_keepalive_keep_the_header_client(gatehouse, echo):
    gh = gatehouse(config(echo))
    with RawConn(gh.port) as c:
        c.send(v2("2001:db8::5", "::1") + request_bytes("GET", "/one"))
        first = c.read_response()
        c.send(request_bytes("GET", "/two"))
        second = c.read_response()
    for r in (first, second):
        assert r.status == 200
        assert upstream_headers(r.json())["x-forwarded-for"] == ["2001:db8::5"]


def test_ip_deny_rule_applies_to_the_header_client(gatehouse, echo):
    deny = {"name": "ip_restriction", "config": {"deny": ["203.0.113.66"]}}
    gh = gatehouse(config(echo, policies=[deny]))
    assert get_via(gh, v1("203.0.113.66")).status == 403
    assert get_via(gh, v2("203.0.113.66")).status == 403
    assert get_via(gh, v1("203.0.113.67")).status == 200
    assert echo.request_count() == 1
    # The socket's own address (127.0.0.1) is not what the rule sees.
    allow_local_only = {"name": "ip_restriction", "config": {"allow": ["127.0.0.1"]}}
    gh2 = gatehouse(config(echo, policies=[allow_local_only]))
    assert get_via(gh2, v1("198.51.100.1")).status == 403


def test_local_command_and_unknown_keep_the_socket_address(gatehouse, echo):
    gh = gatehouse(config(echo))
    local = V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    for header in (local, b"PROXY UNKNOWN\r\n"):
        r = get_via(gh, header)
        assert r.status == 200
        assert upstream_headers(r.json())["x-forwarded-for"] == ["127.0.0.1"]


def test_header_split_over_segments(gatehouse, echo):
    gh = gatehouse(config(echo))
    header = v2("203.0.113.9", tlvs=b"\x02\x00\x0bexample.com")
    with RawConn(gh.port) as c:
        # Separate sends with TCP_NODELAY: gatehouse must wait for the rest, not refuse.
        c.send(header[:7])
        c.send(header[7:20])
        c.send(header[20:] + request_bytes("GET", "/split"))
        r = c.read_response()
    assert r.status == 200
    assert upstream_headers(r.json())["x-forwarded-for"] == ["203.0.113.9"]


def test_trusted_source_without_header_is_refused(gatehouse, echo):
    gh = gatehouse(config(echo))
    assert_refused(gh, request_bytes("GET", "/x"), "missing", 0)
    assert echo.request_count() == 0


@pytest.mark.parametrize("payload", [
    b"PROXY TCP4 1.2.3.04 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\n\r\n",   # leading zero
    b"PROXY TCP4 1.2.3.4 127.0.0.1 1 2\nGET / HTTP/1.1\r\n\r\n",      # LF without CR
    b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",                                # wrong family
    b"PROXY " + b"A" * 120,                                           # no CRLF in 107 bytes
    V2_SIG + b"\x21\x11\x00\x04abcd",                                 # addresses too short
    V2_SIG + b"\x31\x11\x00\x0c" + bytes(12),                         # version 3
    V2_SIG + b"\x21\x11\x00\x10" + bytes(12) + b"\x01\x00\x09h",      # TLV past the end
], ids=["v1-zero", "v1-lf", "v1-family", "v1-long", "v2-short", "v2-version", "v2-tlv"])
def test_malformed_header_is_refused(gatehouse, echo, payload):
    gh = gatehouse(config(echo))
    assert_refused(gh, payload, "malformed", 0)
    assert echo.request_count() == 0


def test_untrusted_sender_is_refused_and_plain_clients_served(gatehouse, echo):
    gh = gatehouse(config(echo, trusted=["192.0.2.0/24"]))
    assert_refused(gh, v1("203.0.113.7") + request_bytes("GET", "/x"), "untrusted", 0)
    assert_refused(gh, v2("203.0.113.7") + request_bytes("GET", "/x"), "untrusted", 1)
    r = get_via(gh, b"", path="/plain")
    assert r.status == 200
    assert upstream_headers(r.json())["x-forwarded-for"] == ["127.0.0.1"]
    assert echo.request_count() == 1


def test_version_not_accepted_is_refused(gatehouse, echo):
    gh = gatehouse(config(echo, versions=["v2"]))
    assert_refused(gh, v1("203.0.113.7") + request_bytes("GET", "/x"), "version", 0)
    assert get_via(gh, v2("203.0.113.7")).status == 200


def test_header_before_tls_on_a_tls_listener(gatehouse, echo, tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    crt, key = make_cert(d, "a", ["a.test"])
    cfg = simple_config(cluster("echo", echo), listeners=listener(
        tls={"certificates": [{"cert": crt, "key": key}]}))
    gh = gatehouse(cfg)
    ctx = ssl.create_default_context(cafile=crt)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT)
    raw.sendall(v2("203.0.113.44", dport=443, tlvs=b"\x02\x00\x06a.test"))
    with ctx.wrap_socket(raw, server_hostname="a.test") as s:
        s.sendall(b"GET /tls HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert upstream_headers(json.loads(body))["x-forwarded-for"] == ["203.0.113.44"]
    # The TLS client hello without a header is "missing", not a TLS failure.
    assert_refused(gh, b"\x16\x03\x01\x00\x05hello", "missing", 0)


def test_config_errors_name_the_line(gatehouse, tmp_path):
    from support.common import GATEHOUSE_BIN
    import subprocess
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "listeners:\n"
        "  - port: 8080\n"
        "    proxy_protocol:\n"
        "      trusted: [10.0.0.1/8]\n"
        "      versions: [v3]\n"
        "clusters:\n"
        "  - name: up\n"
        "    endpoints: [127.0.0.1:1]\n"
        "    proxy_protocol: v4\n"
        "routes:\n"
        "  - {name: r, match: {path_prefix: /}, cluster: up}\n")
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "bad.yaml:4" in text and "trusted" in text
    assert "bad.yaml:5" in text and "v3" in text
    assert "bad.yaml:9" in text and "v4" in text


# ---- sending to upstreams -------------------------------------------------------------------

class CaptureServer:
    """Records the bytes before each connection's first HTTP request (the PROXY header) and
    answers every request with 200 and a keep-alive body naming the connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.headers = []  # per connection: the bytes before the request line
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = []

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping = True
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()

    def _serve(self, c):
        c.settimeout(IO_TIMEOUT)
        buf = b""
        with self.lock:
            index = len(self.headers)
            self.headers.append(None)
        try:
            # A v2 header starts with CRLF CRLF itself: wait for the request line, then its end.
            while (start := buf.find(b"GET ")) < 0 or b"\r\n\r\n" not in buf[start:]:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            with self.lock:
                self.headers[index] = buf[:start]
            buf = buf[start:]
            served = 0
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                    continue
                buf = buf[end + 4:]
                served += 1
                body = f"conn={index} n={served}".encode()
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            return
        finally:
            c.close()

    def captured(self):
        with self.lock:
            return [h for h in self.headers if h is not None]


@pytest.fixture
def capture():
    s = CaptureServer().start()
    yield s
    s.stop()


def parse_v2(data):
    """(command, src, dst, sport, dport, {tlv type: value}) of a v2 header; asserts its framing."""
    assert data[:12] == V2_SIG
    command, fam = data[12], data[13]
    (length,) = struct.unpack("!H", data[14:16])
    assert len(data) == 16 + length, "the header and nothing else precedes the request"
    body = data[16:]
    size = {0x11: 4, 0x21: 16}[fam]
    af = socket.AF_INET if size == 4 else socket.AF_INET6
    src = socket.inet_ntop(af, body[:size])
    dst = socket.inet_ntop(af, body[size:2 * size])
    sport, dport = struct.unpack("!HH", body[2 * size:2 * size + 4])
    tlvs, rest = {}, body[2 * size + 4:]
    while rest:
        t, n = rest[0], struct.unpack("!H", rest[1:3])[0]
        tlvs[t] = rest[3:3 + n]
        assert len(tlvs[t]) == n
        rest = rest[3 + n:]
    return command, src, dst, sport, dport, tlvs


def sending_config(capture, version, **listener_extra):
    return simple_config(cluster("cap", capture, proxy_protocol=version), **listener_extra)


def test_cluster_sends_v1_with_the_client_socket_addresses(gatehouse, capture):
    gh = gatehouse(sending_config(capture, "v1"))
    with RawConn(gh.port) as c:
        client_port = c.sock.getsockname()[1]
        c.send(request_bytes("GET", "/a"))
        assert c.read_response().status == 200
    assert capture.captured() == [
        f"PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {gh.port}\r\n".encode()]


def test_cluster_sends_v2_with_the_accepted_header_client_and_tlvs(gatehouse, capture):
    cfg = sending_config(capture, "v2", listeners=listener())
    gh = gatehouse(cfg)
    with RawConn(gh.port) as c:
        c.send(v2("203.0.113.7", "198.51.100.1", 40000, 443, tlvs=b"\x02\x00\x06a.test") +
               request_bytes("GET", "/a", headers=[("x-request-id", "req-42")]))
        r = c.read_response()
    assert r.status == 200
    [header] = capture.captured()
    command, src, dst, sport, dport, tlvs = parse_v2(header)
    assert (command, src, dst, sport, dport) == (0x21, "203.0.113.7", "198.51.100.1", 40000, 443)
    assert tlvs[0x02] == b"a.test"  # authority from the accepted header
    assert tlvs[0x05] == b"req-42"  # unique id: the id of the request that opened it


def test_proxied_upstream_connections_are_not_shared_between_clients(gatehouse, capture):
    gh = gatehouse(sending_config(capture, "v1"), workers=1)
    ports = []
    for _ in range(2):
        with RawConn(gh.port) as c:
            ports.append(c.sock.getsockname()[1])
            for path in ("/1", "/2", "/3"):
                c.send(request_bytes("GET", path))
                r = c.read_response()
                assert r.status == 200
    # One upstream connection per client (its keep-alive requests reuse it), each naming it.
    assert capture.captured() == [
        f"PROXY TCP4 127.0.0.1 127.0.0.1 {p} {gh.port}\r\n".encode() for p in ports]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_health_checks_send_a_header_too(gatehouse, capture, version):
    hc = {"path": "/health", "interval": "200ms", "timeout": "200ms",
          "healthy_threshold": 1, "unhealthy_threshold": 2}
    gatehouse(simple_config(cluster("cap", capture, proxy_protocol=version, health_check=hc)))
    first = wait_until(lambda: capture.captured()[:1], message="a health check")[0]
    if version == "v2":
        assert first == V2_SIG + b"\x20\x00\x00\x00"  # LOCAL, no addresses
    else:
        assert first.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ") and first.endswith(
            f" {capture.port}\r\n".encode())
