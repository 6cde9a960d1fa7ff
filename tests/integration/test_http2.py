"""Downstream HTTP/2: h2c prior knowledge and h2 over TLS (ALPN), streams multiplexed onto the
same routing, filters and upstream exchange as HTTP/1, flow control, trailers, GOAWAY on drain,
and the protections (rapid reset, control-frame and CONTINUATION floods, oversized header lists,
stalled windows), each with its metric. Clients: httpx (h2), curl, and the `h2` library driving
raw frames where a test needs exact protocol control."""
import hashlib
import json
import signal
import socket
import ssl
import subprocess
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest

from support import IO_TIMEOUT, cluster, gen_sha256, simple_config, wait_until
from test_tls import certs, client_ctx, tls_config  # noqa: F401  (fixture reuse)


class H2Conn:
    """A raw HTTP/2 client connection (prior knowledge, or TLS with ALPN h2)."""

    def __init__(self, port, tls_ctx=None, server_name="a.test", settings=None):
        sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        if tls_ctx is not None:
            sock = tls_ctx.wrap_socket(sock, server_hostname=server_name)
        self.sock = sock
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.responses = {}   # stream id -> dict(status, headers, body, trailers, ended, reset)
        self.terminated = None
        self.closed = False
        self.auto_ack = True

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, headers=(), body=None, authority="127.0.0.1", end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", authority)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=body is None and end)
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        view = memoryview(body)
        while view:
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0:
                self.pump(lambda: self.conn.local_flow_control_window(sid) > 0)
                continue
            self.conn.send_data(sid, bytes(view[:window]))
            view = view[window:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def _resp(self, sid):
        return self.responses.setdefault(sid, {"status": None, "headers": {}, "body": bytearray(),
                                               "trailers": {}, "ended": False, "reset": None})

    def pump(self, cond, timeout=IO_TIMEOUT * 2):
        deadline = time.monotonic() + timeout
        while not cond():
            if self.closed:
                return
            assert time.monotonic() < deadline, "timed out waiting for HTTP/2 events"
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.closed = True
                return
            for ev in self.conn.receive_data(data):
                self._on_event(ev)
            try:
                self.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True

    def _on_event(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            r = self._resp(ev.stream_id)
            r["headers"] = dict(ev.headers)
            r["status"] = int(r["headers"][":status"])
        elif isinstance(ev, h2.events.DataReceived):
            self._resp(ev.stream_id)["body"] += ev.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            self._resp(ev.stream_id)["trailers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self._resp(ev.stream_id)["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            self._resp(ev.stream_id)["reset"] = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = ev

    def response(self, sid, timeout=IO_TIMEOUT * 2):
        self.pump(lambda: self._resp(sid)["ended"] or self._resp(sid)["reset"] is not None,
                  timeout)
        return self._resp(sid)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def echo_json(resp):
    return json.loads(bytes(resp["body"]))


def h2c_client():
    return httpx.Client(http1=False, http2=True, timeout=IO_TIMEOUT * 2)


def test_h2_framing_header_with_underscore_is_400_and_others_pass(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    with h2c_client() as c:
        r = c.post(f"{gh.url}/cgi", content=b"hello", headers={"content_length": "99"})
        assert r.status_code == 400 and r.http_version == "HTTP/2"
        r = c.get(f"{gh.url}/ok", headers={"x_custom": "v"})
        assert r.status_code == 200
        assert dict(r.json()["headers"])["x_custom"] == "v"
    assert echo.request_count() == 1


def test_h2c_prior_knowledge_and_http1_share_a_port(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    with h2c_client() as c:
        r = c.get(f"{gh.url}/hello?x=1", headers={"x-custom": "v", "cookie": "a=1"})
        # A second request on the same connection.
        r2 = c.get(f"{gh.url}/again")
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert r2.status_code == 200
    seen = r.json()
    assert seen["path"] == "/hello?x=1"
    hdrs = dict(seen["headers"])
    assert hdrs["x-custom"] == "v"
    assert hdrs["host"] == f"127.0.0.1:{gh.port}"
    assert hdrs["x-forwarded-for"] == "127.0.0.1"
    assert hdrs["x-forwarded-proto"] == "http"
    assert "x-request-id" in hdrs and hdrs["cookie"] == "a=1"
    assert seen["version"] == "HTTP/1.1"  # upstream side stays HTTP/1.1
    # Plain HTTP/1.1 on the same listener still works.
    r3 = httpx.get(f"{gh.url}/h1", timeout=IO_TIMEOUT)
    assert r3.status_code == 200 and r3.http_version == "HTTP/1.1"
    m = gh.metrics()
    assert m.value("gatehouse_http2_streams_total") >= 2


def test_cookie_crumbs_are_joined_for_http1_upstreams(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    c = H2Conn(gh.port)
    sid = c.request("GET", "/c", headers=[("cookie", "a=1"), ("cookie", "b=2")])
    r = c.response(sid)
    c.close()
    assert r["status"] == 200
    hdrs = dict(echo_json(r)["headers"])
    assert hdrs["cookie"] == "a=1; b=2"


def test_curl_http2_prior_knowledge(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                          "%{http_code} %{http_version}", f"{gh.url}/curl"],
                         capture_output=True, text=True, timeout=IO_TIMEOUT * 2)
    assert out.stdout == "200 2"


def test_h2_over_tls_with_alpn(gatehouse, echo, certs):  # noqa: F811
    gh = gatehouse(tls_config(certs, echo))
    ctx = client_ctx(alpn=("h2", "http/1.1"))
    with socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            assert s.selected_alpn_protocol() == "h2"
    c = H2Conn(gh.port, tls_ctx=client_ctx(alpn=("h2",)))
    sid = c.request("GET", "/tls", authority="a.test")
    r = c.response(sid)
    c.close()
    assert r["status"] == 200
    hdrs = dict(echo_json(r)["headers"])
    assert hdrs["x-forwarded-proto"] == "https" and hdrs["host"] == "a.test"
    # A client offering only http/1.1 gets HTTP/1.1.
    ctx11 = client_ctx(alpn=("http/1.1",))
    with socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT) as raw:
        with ctx11.wrap_socket(raw, server_hostname="a.test") as s:
            assert s.selected_alpn_protocol() == "http/1.1"


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_nghttp_and_h2load(gatehouse, echo, certs, tls):  # noqa: F811
    # nghttp2's own clients: one verbose request, then a bounded load (4 connections x 5
    # streams) whose every response must succeed with 200.
    gh = gatehouse(tls_config(certs, echo) if tls else simple_config(cluster("up", echo)))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{gh.port}/nghttp"
    one = subprocess.run(["nghttp", "-v", "-H", "x-client: nghttp", url], capture_output=True,
                         text=True, timeout=IO_TIMEOUT * 4)
    assert one.returncode == 0, one.stderr
    assert ":status: 200" in one.stdout
    assert '"x-client", "nghttp"' in one.stdout.replace("\n", "")  # echoed request headers
    load = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "5", url],
                          capture_output=True, text=True, timeout=IO_TIMEOUT * 12)
    assert load.returncode == 0, load.stderr
    assert "400 succeeded, 0 failed, 0 errored" in load.stdout, load.stdout
    assert "status codes: 400 2xx" in load.stdout, load.stdout
    if tls:
        assert "Application protocol: h2" in load.stdout


def test_http2_can_be_disabled(gatehouse, echo, certs):  # noqa: F811
    cfg = tls_config(certs, echo)
    cfg["http2"] = {"enabled": False}
    gh = gatehouse(cfg)
    ctx = client_ctx(alpn=("h2", "http/1.1"))
    with socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
    plain = gatehouse(simple_config(cluster("up", echo), http2={"enabled": False}))
    with socket.create_connection(("127.0.0.1", plain.port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 505")


def test_many_concurrent_streams_on_one_connection(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    c = H2Conn(gh.port)
    sids = [c.request("GET", f"/s/{i}", headers=[("x-echo-delay", "0.05")]) for i in range(40)]
    results = {sid: c.response(sid) for sid in sids}
    c.close()
    for i, sid in enumerate(sids):
        r = results[sid]
        assert r["status"] == 200, r
        assert echo_json(r)["path"] == f"/s/{i}"


def test_large_bodies_both_ways_with_flow_control(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    body = bytes(range(256)) * (5 * 4096)  # 5 MiB, far beyond the 256 KiB stream window
    with h2c_client() as c:
        r = c.post(f"{gh.url}/upload", content=body)
        assert r.status_code == 200
        assert r.json()["body_length"] == len(body)
        assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
        size = 8 * 1024 * 1024
        r = c.get(f"{gh.url}/download", headers={"x-echo-body-size": str(size)})
        assert r.status_code == 200 and len(r.content) == size
        assert hashlib.sha256(r.content).hexdigest() == gen_sha256(size)
    # A streamed (unknown-length) upload goes upstream chunked.
    c2 = H2Conn(gh.port)
    sid = c2.request("POST", "/chunked", body=b"x" * 100000)
    r = c2.response(sid)
    c2.close()
    seen = echo_json(r)
    assert seen["body_length"] == 100000
    assert dict(seen["headers"]).get("transfer-encoding") == "chunked"


def test_trailers_both_ways(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    c = H2Conn(gh.port)
    sid = c.request("POST", "/t", headers=[("x-echo-trailer", "x-checksum: abc")],
                    body=b"hello", end=False)
    c.conn.send_headers(sid, [("x-req-trailer", "42")], end_stream=True)
    c.flush()
    r = c.response(sid)
    c.close()
    assert r["status"] == 200
    assert r["trailers"].get("x-checksum") == "abc"
    assert echo_json(r)["trailers"] == [["x-req-trailer", "42"]]


def test_streams_reused_on_one_connection_carry_nothing_over(gatehouse, echo):
    # Finished streams are recycled for new stream ids: a request must not see the previous
    # one's body, trailers, cookie or head fields, whatever order they come in.
    gh = gatehouse(simple_config(cluster("up", echo)))
    c = H2Conn(gh.port)
    for i in range(30):
        if i % 3 == 0:
            sid = c.request("POST", f"/p/{i}", headers=[("cookie", f"c={i}")],
                            body=b"b" * (i + 1), end=False)
            c.conn.send_headers(sid, [("x-req-trailer", str(i))], end_stream=True)
            c.flush()
        elif i % 3 == 1:
            sid = c.request("GET", f"/g/{i}")
        else:
            sid = c.request("POST", f"/q/{i}?n={i}", body=b"")
        r = c.response(sid)
        assert r["status"] == 200, r
        seen = echo_json(r)
        hdrs = dict(seen["headers"])
        if i % 3 == 0:
            assert seen["path"] == f"/p/{i}"
            assert seen["body_length"] == i + 1
            assert seen["trailers"] == [["x-req-trailer", str(i)]]
            assert hdrs["cookie"] == f"c={i}"
        else:
            assert seen["path"] == (f"/g/{i}" if i % 3 == 1 else f"/q/{i}?n={i}")
            assert seen["body_length"] == 0
            assert not seen["trailers"]
            assert "cookie" not in hdrs
    c.close()


def test_a_burst_to_an_http2_upstream_opens_one_connection(gatehouse, echo):
    # Streams that start while a worker opens an HTTP/2 upstream connection wait for it instead
    # of opening one each. All 20 HEADERS frames go in one write, so they start in one loop turn.
    b = gatehouse(simple_config(cluster("up", echo)), name="b")
    a = gatehouse(simple_config({
        "name": "h2", "protocol": "h2c", "endpoints": [f"127.0.0.1:{b.port}"]}),
        workers=1, name="a")
    accepted = "gatehouse_connections_accepted_total"
    before = b.metrics().value(accepted)  # the fixture's own start-up probes
    c = H2Conn(a.port)
    sids = []
    for i in range(20):
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "GET"), (":path", f"/burst/{i}"),
                                  (":scheme", "http"), (":authority", "127.0.0.1")],
                            end_stream=True)
        sids.append(sid)
    c.flush()
    assert [c.response(sid)["status"] for sid in sids] == [200] * 20
    c.close()
    assert b.metrics().value(accepted) - before == 1


def test_local_replies_and_head_over_http2(gatehouse, echo):
    cfg = simple_config(cluster("up", echo),
                        routes=[{"name": "api", "match": {"path_prefix": "/api"}, "cluster": "up"}])
    gh = gatehouse(cfg)
    c = H2Conn(gh.port)
    sid = c.request("GET", "/nope")
    r = c.response(sid)
    assert r["status"] == 404
    body = json.loads(bytes(r["body"]))
    assert body["status"] == 404 and body["request_id"]
    sid = c.request("HEAD", "/api/x")
    r = c.response(sid)
    c.close()
    assert r["status"] == 200 and bytes(r["body"]) == b""


def test_client_reset_mid_upload_leaves_the_gateway_healthy(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    c = H2Conn(gh.port)
    sid = c.request("POST", "/partial", headers=[("content-length", "100000")],
                    body=b"y" * 1000, end=False)
    c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    c.flush()
    sid2 = c.request("GET", "/after")
    r = c.response(sid2)
    c.close()
    assert r["status"] == 200
    gh.wait_log(lambda rec: rec.get("path") == "/partial")


def test_rapid_reset_closes_the_connection(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo),
                                 http2={"max_resets_per_second": 50}))
    c = H2Conn(gh.port)
    for _ in range(300):
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "GET"), (":path", "/r"), (":scheme", "http"),
                                  (":authority", "x")], end_stream=True)
        c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        try:
            c.flush()
        except (BrokenPipeError, ConnectionResetError):
            break
    c.pump(lambda: c.terminated is not None)
    c.close()
    assert c.terminated is not None
    assert c.terminated.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    wait_until(lambda: gh.metrics().value("gatehouse_http2_protection_total",
                                          reason="rapid_reset") >= 1)
    assert httpx.get(f"{gh.url}/still-up", timeout=IO_TIMEOUT).status_code == 200


def test_ping_flood_gets_goaway(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo), http2={"control_frame_budget": 50}))
    c = H2Conn(gh.port)
    for i in range(500):
        c.conn.ping(i.to_bytes(8, "big"))
        try:
            c.flush()
        except (BrokenPipeError, ConnectionResetError):
            break
    c.pump(lambda: c.terminated is not None)
    c.close()
    assert c.terminated is not None
    assert c.terminated.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    wait_until(lambda: gh.metrics().value("gatehouse_http2_protection_total",
                                          reason="control_frame_flood") >= 1)


def frame(ftype, flags, sid, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def continuation_flood(port, block):
    """HEADERS without END_HEADERS, then one CONTINUATION per byte of the header block: returns
    (GOAWAY error codes received, how the connection ended)."""
    from support.h2flood import GOAWAY, goaway_code, read_until_closed
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
        out = frame(1, 0x1, 1, block[:1])
        for i in range(1, len(block)):
            out += frame(9, 0, 1, block[i:i + 1])
        try:
            s.sendall(out)
        except (BrokenPipeError, ConnectionResetError):
            pass
        frames, how = read_until_closed(s, IO_TIMEOUT)
    return [goaway_code(f[3]) for f in frames if f[0] == GOAWAY], how


def test_continuation_flood_closes_the_connection(gatehouse, echo):
    # Floods of CONTINUATION frames on several connections, one after another, while another
    # client keeps being served: each flood ends with GOAWAY(ENHANCE_YOUR_CALM) and a close,
    # and its request never goes upstream.
    import threading
    import hpack
    gh = gatehouse(simple_config(cluster("up", echo)))
    block = hpack.Encoder().encode([(":method", "GET"), (":path", "/" + "a" * 200),
                                    (":scheme", "http"), (":authority", "x")])
    results = []

    def flooder():
        for _ in range(10):
            results.append(continuation_flood(gh.port, block))
    t = threading.Thread(target=flooder)
    t.start()
    try:
        c = H2Conn(gh.port)
        served = 0
        while t.is_alive() or served < 5:
            assert c.response(c.request("GET", f"/during/{served}"))["status"] == 200
            served += 1
            assert served < 10_000
        c.close()
    finally:
        t.join(timeout=IO_TIMEOUT * 10)
    assert len(results) == 10
    for goaways, how in results:
        assert goaways == [h2.errors.ErrorCodes.ENHANCE_YOUR_CALM], results
        assert how in ("eof", "reset"), results  # closed, not merely answered
    wait_until(lambda: gh.metrics().value("gatehouse_http2_protection_total",
                                          reason="continuation_flood") >= 10)
    assert not any(rec.get("path", "").startswith("/aaa") for rec in gh.access_log())


def test_oversized_header_list_resets_only_that_stream(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo), http2={"max_header_list_bytes": 4096}))
    c = H2Conn(gh.port)
    sid = c.request("GET", "/big", headers=[("x-big", "z" * 8000)])
    r = c.response(sid)
    assert r["reset"] is not None and r["status"] is None
    sid2 = c.request("GET", "/small")
    assert c.response(sid2)["status"] == 200
    c.close()
    wait_until(lambda: gh.metrics().value("gatehouse_http2_protection_total",
                                          reason="header_list_too_large") >= 1)


def test_closed_client_window_stalls_are_cut(gatehouse, echo):
    cfg = simple_config(cluster("up", echo), timeouts={"client_body": "500ms"})
    gh = gatehouse(cfg)
    c = H2Conn(gh.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.auto_ack = False
    sid = c.request("GET", "/stall", headers=[("x-echo-body-size", str(1 << 20))])
    r = c.response(sid, timeout=IO_TIMEOUT * 3)
    assert r["reset"] is not None
    c.close()
    wait_until(lambda: gh.metrics().value("gatehouse_http2_protection_total",
                                          reason="stalled_window") >= 1)


def test_drain_sends_goaway_and_finishes_in_flight_streams(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("up", echo)))
    # nghttp prints every frame it receives (the h2 library treats GOAWAY as the end).
    proc = subprocess.Popen(["nghttp", "-v", "-H", "x-echo-wait: slow", f"{gh.url}/slow"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: echo.request_count() >= 1)
        gh.signal(signal.SIGTERM)
        wait_until(lambda: "draining" in gh.stderr())
        echo.release("slow")
        out, _ = proc.communicate(timeout=IO_TIMEOUT * 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "recv GOAWAY frame" in out, out
    assert "error_code=NO_ERROR" in out
    assert ":status: 200" in out
