"""PROXY protocol on TCP listeners: accepted from trusted sources (the header names the client
for IP rules, logs and the header sent upstream), and sent to a cluster with
`proxy_protocol: v1|v2` in front of the client's bytes (v2 with the connection's id as the
unique id, the same id the access-log line carries); the client's bytes follow untouched."""
import socket
import ssl
import threading

import pytest

from support import wait_until
from support.l4 import endpoints, tcp_config, tcp_port
from support.tcp import echo_handler, read_until_closed
from test_proxy_protocol import V2_SIG, parse_v2, v1, v2
from test_tls import make_cert


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return data


class HeaderCapture:
    """A TCP handler that reads one PROXY header (v1 line or v2 block), records it, then
    echoes the rest of the connection."""

    def __init__(self):
        self.headers = []
        self.lock = threading.Lock()

    def __call__(self, conn):
        first = read_exact(conn, 12)
        if first == V2_SIG:
            rest = read_exact(conn, 4)
            header = first + rest + read_exact(conn, int.from_bytes(rest[2:4], "big"))
        else:
            header = first
            while not header.endswith(b"\r\n") and len(header) < 108:
                header += read_exact(conn, 1)
        with self.lock:
            self.headers.append(header)
        echo_handler(conn)

    def captured(self):
        with self.lock:
            return list(self.headers)


def round_trip(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        local = s.getsockname()
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            assert chunk, "the echo ended early"
            got += chunk
        return local, got


@pytest.mark.parametrize("relay", ["splice", "copy"])
def test_v1_names_the_client_and_the_bytes_follow_untouched(gatehouse, tcp_server, relay):
    cap = HeaderCapture()
    up = tcp_server(cap)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port), "proxy_protocol": "v1"},
                             {"relay": relay}))
    payload = bytes(range(256)) * 64
    (_, client_port), got = round_trip(tcp_port(g), payload)
    assert got == payload
    assert cap.captured() == [
        f"PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {tcp_port(g)}\r\n".encode()]
    line = g.wait_log(lambda e: e.get("kind") == "tcp")
    assert line["bytes_in"] == len(payload), "the header is not counted as the client's bytes"


def test_v2_carries_the_connection_id_as_unique_id(gatehouse, tcp_server):
    cap = HeaderCapture()
    up = tcp_server(cap)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port), "proxy_protocol": "v2"}))
    ids = []
    for i in range(2):
        (_, client_port), got = round_trip(tcp_port(g), b"hello %d" % i)
        assert got == b"hello %d" % i
        command, src, dst, sport, dport, tlvs = parse_v2(cap.captured()[i])
        assert (command, src, dst, sport, dport) == (
            0x21, "127.0.0.1", "127.0.0.1", client_port, tcp_port(g))
        ids.append(tlvs[0x05].decode())
    assert ids[0] != ids[1], "each connection has its own id"
    def tcp_lines():
        lines = [e for e in g.access_log() if e.get("kind") == "tcp"]
        return lines if len(lines) >= 2 else None
    lines = wait_until(tcp_lines, message="two tcp log lines")
    assert sorted(e["id"] for e in lines) == sorted(ids)


def test_send_expect_health_check_sends_a_local_header_first(gatehouse, tcp_server):
    cap = HeaderCapture()
    up = tcp_server(cap)
    hc = {"type": "tcp", "send": "PING\r\n", "expect": "PING", "interval": "200ms",
          "timeout": "200ms", "healthy_threshold": 1, "unhealthy_threshold": 1}
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port), "proxy_protocol": "v2",
                              "health_check": hc}))
    checks = wait_until(lambda: cap.captured()[:3] if len(cap.captured()) >= 3 else None,
                        message="three health checks")
    assert checks == [V2_SIG + b"\x20\x00\x00\x00"] * 3  # LOCAL, no addresses
    # The echo answered PING after the header: with unhealthy_threshold 1, one failed check
    # would have taken the host out.
    assert g.metrics().value("gatehouse_upstream_host_healthy", cluster="up",
                             host=f"127.0.0.1:{up.port}") == 1
    assert round_trip(tcp_port(g), b"x")[1] == b"x"


def test_v2_names_the_passthrough_sni_as_authority(gatehouse, tcp_server):
    import ssl
    cap = HeaderCapture()
    up = tcp_server(cap)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port), "proxy_protocol": "v2"},
                             {"tls_passthrough": {"routes": [{"sni": "a.test", "cluster": "up"}]}}))
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as raw:
        # The echo sends the ClientHello back, so the handshake fails; only the header matters.
        with pytest.raises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw, server_hostname="a.test")
    header = wait_until(lambda: cap.captured()[:1], message="the PROXY header")[0]
    tlvs = parse_v2(header)[5]
    assert tlvs[0x02] == b"a.test"
    assert len(tlvs[0x05]) == 36  # the connection id


# ---- accepting a PROXY header on a TCP listener ----------------------------------------------

def accepting_config(up, trusted=("127.0.0.1/32",), tcp=None, send="v2"):
    cluster = {"name": "up", "endpoints": endpoints(up.port)}
    if send:
        cluster["proxy_protocol"] = send
    c = tcp_config(cluster, tcp)
    c["listeners"][1]["proxy_protocol"] = {"trusted": list(trusted)}
    return c


def send_and_close(port, payload):
    """Sends payload, reads until the gateway closes; returns what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        s.sendall(payload)
        return read_until_closed(s)


def refused_count(g, reason):
    return g.metrics().get_value("gatehouse_proxy_protocol_refused_total", reason=reason) or 0


@pytest.mark.parametrize("header", ["v1", "v2"])
def test_trusted_header_names_the_client_upstream_and_in_the_log(gatehouse, tcp_server, header):
    cap = HeaderCapture()
    up = tcp_server(cap)
    g = gatehouse(accepting_config(up))
    hdr = (v1("203.0.113.7", "198.51.100.1", 40000, 5432) if header == "v1" else
           v2("203.0.113.7", "198.51.100.1", 40000, 5432, tlvs=b"\x02\x00\x06a.test"))
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
        s.settimeout(10)
        s.sendall(hdr + b"ping")
        assert read_exact(s, 4) == b"ping", "the header is consumed, the bytes after it relayed"
    command, src, dst, sport, dport, tlvs = parse_v2(cap.captured()[0])
    assert (src, dst, sport, dport) == ("203.0.113.7", "198.51.100.1", 40000, 5432)
    if header == "v2":
        assert tlvs[0x02] == b"a.test", "the accepted header's authority is passed on"
    line = g.wait_log(lambda e: e.get("kind") == "tcp")
    assert line["client"] == "203.0.113.7:40000" and line["bytes_in"] == 4


def test_ip_rules_apply_to_the_header_client(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    g = gatehouse(accepting_config(up, tcp={"ip_restriction": {"deny": ["203.0.113.0/24"]}},
                                   send=None))
    assert send_and_close(tcp_port(g), v1("203.0.113.7") + b"x") == b""
    assert g.wait_log(lambda e: e.get("kind") == "tcp")["close_reason"] == "ip_denied"
    assert up.accepted == 0
    # Another client address passes the same rules.
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
        s.settimeout(10)
        s.sendall(v1("192.0.2.9") + b"ok")
        assert read_exact(s, 2) == b"ok"


def test_trusted_source_without_a_header_is_refused(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    g = gatehouse(accepting_config(up, send=None))
    assert send_and_close(tcp_port(g), b"PING\r\n" * 20) == b""
    wait_until(lambda: refused_count(g, "missing") == 1, message="refused{missing}")
    assert g.wait_log(lambda e: e.get("kind") == "tcp")["close_reason"] == "rejected"
    assert up.accepted == 0


def test_untrusted_sender_of_a_header_is_refused_and_plain_clients_served(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    g = gatehouse(accepting_config(up, trusted=("10.0.0.0/8",), send=None))
    assert send_and_close(tcp_port(g), v1("203.0.113.7") + b"x") == b""
    wait_until(lambda: refused_count(g, "untrusted") == 1, message="refused{untrusted}")
    assert round_trip(tcp_port(g), b"plain")[1] == b"plain"


def test_header_then_client_hello_routes_by_sni(gatehouse, tcp_server):
    import ssl
    cap = HeaderCapture()
    up = tcp_server(cap)
    g = gatehouse(accepting_config(
        up, tcp={"tls_passthrough": {"routes": [{"sni": "a.test", "cluster": "up"}]}}))
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as raw:
        raw.sendall(v2("203.0.113.7", "198.51.100.1", 40000, 443))
        with pytest.raises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw, server_hostname="a.test")
    header = wait_until(lambda: cap.captured()[:1], message="the PROXY header")[0]
    _, src, _, sport, _, tlvs = parse_v2(header)
    assert (src, sport, tlvs[0x02]) == ("203.0.113.7", 40000, b"a.test")


class HeaderThenTls:
    """A TCP handler that reads one PROXY v2 header in the clear, then runs a TLS server
    handshake (its own certificate, the SNI recorded), then answers each message reversed."""

    def __init__(self, cert, size):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cert)
        self.ctx.sni_callback = lambda sock, name, ctx: self.names.append(name)
        self.size = size
        self.names = []
        self.headers = []

    def __call__(self, conn):
        first = read_exact(conn, 16)
        self.headers.append(first + read_exact(conn, int.from_bytes(first[14:16], "big")))
        with self.ctx.wrap_socket(conn, server_side=True) as tls:
            self.versions = tls.version()
            tls.sendall(read_exact(tls, self.size)[::-1])
            tls.unwrap()


def test_v2_header_goes_before_the_upstream_tls_handshake(gatehouse, tcp_server, tmp_path):
    cert = make_cert(tmp_path, "upstream", ["upstream.test"])
    payload = bytes(range(256)) * 40
    cap = HeaderThenTls(cert, len(payload))
    up = tcp_server(cap)
    cluster = {"name": "up", "endpoints": endpoints(up.port), "proxy_protocol": "v2",
               "tls": {"ca": cert[0], "sni": "upstream.test"}}
    g = gatehouse(tcp_config(cluster, {"relay": "splice"}))
    (_, client_port), got = round_trip(tcp_port(g), payload)
    # The reply crossed the TLS session the back-end ran after reading the header in the clear.
    assert got == payload[::-1]
    assert cap.names == ["upstream.test"] and cap.versions.startswith("TLS")
    command, src, dst, sport, dport, tlvs = parse_v2(cap.headers[0])
    assert (command, src, dst, sport, dport) == (
        0x21, "127.0.0.1", "127.0.0.1", client_port, tcp_port(g))
    line = g.wait_log(lambda e: e.get("kind") == "tcp")
    assert tlvs[0x05].decode() == line["id"]
    assert line["close_reason"] == "closed" and line["bytes_in"] == len(payload)
