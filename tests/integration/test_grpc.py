"""gRPC through the gateway and upstream HTTP/2: a real grpcio server (h2c) behind Gatehouse
and a real grpcio client in front, all four call types with trailers, gateway errors as gRPC
status, grpc-timeout enforced by the gateway, and plain HTTP over h2/h2c upstreams (a second
Gatehouse serves as the HTTP/2 upstream)."""
import hashlib
import queue
import threading
import time
from concurrent import futures

import grpc
import httpx
import pytest

from support import IO_TIMEOUT, cluster, free_port, gen_sha256, simple_config, wait_until
from test_http2 import H2Conn
from test_tls import certs, tls_config  # noqa: F401  (fixture reuse)

SERVICE = "test.Echo"


def _unary(request, context):
    if request == b"fail":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    md = dict(context.invocation_metadata())
    context.set_trailing_metadata((("x-trailer", "t-" + md.get("x-tag", "")),))
    return request[::-1]


def _server_stream(request, context):
    for i in range(int(request)):
        yield b"msg-%d" % i


def _client_stream(request_iterator, context):
    return b"|".join(request_iterator)


def _bidi(request_iterator, context):
    for m in request_iterator:
        yield b"echo:" + m


def _slow(request, context):
    deadline = time.monotonic() + 5
    while context.is_active() and time.monotonic() < deadline:
        time.sleep(0.02)
    return b"late"


class GrpcServer:
    def __init__(self):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
            "Slow": grpc.unary_unary_rpc_method_handler(_slow),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(0).wait(IO_TIMEOUT)


@pytest.fixture
def grpc_server():
    s = GrpcServer()
    yield s
    s.stop()


def grpc_cluster(port, name="g"):
    return {"name": name, "protocol": "h2c", "endpoints": [f"127.0.0.1:{port}"]}


@pytest.fixture
def channel_factory():
    chans = []

    def make(port):
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        chans.append(ch)
        return ch
    yield make
    for ch in chans:
        ch.close()


def test_all_four_call_types_with_trailers(gatehouse, grpc_server, channel_factory):
    gh = gatehouse(simple_config(grpc_cluster(grpc_server.port)))
    ch = channel_factory(gh.port)
    unary = ch.unary_unary(f"/{SERVICE}/Unary")
    resp, call = unary.with_call(b"hello", metadata=(("x-tag", "abc"),), timeout=IO_TIMEOUT)
    assert resp == b"olleh"
    assert ("x-trailer", "t-abc") in call.trailing_metadata()

    stream = ch.unary_stream(f"/{SERVICE}/ServerStream")
    got = list(stream(b"100", timeout=IO_TIMEOUT))
    assert got == [b"msg-%d" % i for i in range(100)]

    client_stream = ch.stream_unary(f"/{SERVICE}/ClientStream")
    assert client_stream(iter([b"a%d" % i for i in range(50)]), timeout=IO_TIMEOUT) == \
        b"|".join(b"a%d" % i for i in range(50))

    # Bidirectional: each reply arrives before the next message is sent (no buffering).
    bidi = ch.stream_stream(f"/{SERVICE}/Bidi")
    outbox = queue.Queue()

    def requests():
        for i in range(20):
            outbox.get(timeout=IO_TIMEOUT)
            yield b"m%d" % i
    replies = bidi(requests(), timeout=IO_TIMEOUT * 2)
    outbox.put(1)
    for i, r in enumerate(replies):
        assert r == b"echo:m%d" % i
        if i < 19:
            outbox.put(1)
    rec = gh.wait_log(lambda rec: rec.get("path") == f"/{SERVICE}/Bidi")
    assert rec["status"] == 200


def test_upstream_grpc_errors_pass_through(gatehouse, grpc_server, channel_factory):
    gh = gatehouse(simple_config(grpc_cluster(grpc_server.port)))
    unary = channel_factory(gh.port).unary_unary(f"/{SERVICE}/Unary")
    with pytest.raises(grpc.RpcError) as e:
        unary(b"fail", timeout=IO_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "no such thing"


def test_gateway_errors_are_grpc_status(gatehouse, grpc_server, channel_factory):
    dead = free_port()
    cfg = simple_config(grpc_cluster(dead, name="dead"), grpc_cluster(grpc_server.port),
                        routes=[{"name": "dead", "match": {"path_prefix": "/dead."}, "cluster": "dead"},
                                {"name": "ok", "match": {"path_prefix": "/test."}, "cluster": "g",
                                 "policies": [{"name": "key_auth",
                                               "config": {"consumers": [
                                                   {"name": "c", "keys": [{"sha256": hashlib.sha256(b"k").hexdigest()}]}]}}]}])
    gh = gatehouse(cfg)
    ch = channel_factory(gh.port)
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/dead.Svc/Call")(b"x", timeout=IO_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/nowhere.Svc/Call")(b"x", timeout=IO_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary(f"/{SERVICE}/Unary")(b"x", timeout=IO_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_timeout_is_enforced_by_the_gateway(gatehouse, grpc_server):
    gh = gatehouse(simple_config(grpc_cluster(grpc_server.port)))
    c = H2Conn(gh.port)
    t0 = time.monotonic()
    # A raw client that would wait for ever: only the gateway enforces the 300 ms.
    sid = c.request("POST", f"/{SERVICE}/Slow",
                    headers=[("content-type", "application/grpc"), ("te", "trailers"),
                             ("grpc-timeout", "300m")],
                    body=b"\x00\x00\x00\x00\x01x")
    r = c.response(sid, timeout=IO_TIMEOUT * 2)
    c.close()
    assert time.monotonic() - t0 < 4.5  # well before the upstream's 5 s
    assert r["status"] == 200
    assert r["headers"].get("grpc-status") == "4"  # DEADLINE_EXCEEDED, trailers-only


def test_http_over_h2c_and_h2_upstreams(gatehouse, echo, certs):  # noqa: F811
    # Gatehouse B speaks h2c (prior knowledge) and h2 (TLS) downstream; A uses it as an
    # HTTP/2 upstream.
    b = gatehouse(simple_config(cluster("up", echo)), name="b")
    btls = gatehouse(tls_config(certs, echo), name="btls")
    a = gatehouse(simple_config(
        {"name": "h2c", "protocol": "h2c", "endpoints": [f"127.0.0.1:{b.port}"]},
        {"name": "h2", "protocol": "h2", "endpoints": [f"127.0.0.1:{btls.port}"],
         "tls": {"verify": False, "sni": "a.test"}},
        routes=[{"name": "tls", "match": {"path_prefix": "/tls"}, "cluster": "h2"},
                {"name": "clear", "match": {"path_prefix": "/"}, "cluster": "h2c"}]), name="a")
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        for prefix in ("/clear", "/tls"):
            r = c.get(f"{a.url}{prefix}/x?q=1", headers={"x-custom": "1"})
            assert r.status_code == 200
            seen = r.json()
            assert seen["path"] == f"{prefix}/x?q=1"
            assert dict(seen["headers"])["x-custom"] == "1"
            body = bytes(range(256)) * 8192  # 2 MiB up
            r = c.post(f"{a.url}{prefix}/up", content=body)
            assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
            size = 3 << 20
            r = c.get(f"{a.url}{prefix}/down", headers={"x-echo-body-size": str(size)})
            assert len(r.content) == size and hashlib.sha256(r.content).hexdigest() == gen_sha256(size)
            r = c.get(f"{a.url}{prefix}/t", headers={"x-echo-trailer": "x-sum: 7"})
            assert r.status_code == 200
            # An HTTP/1.1 chunked upload: its first chunk is read before the stream opens and
            # must go up exactly once.
            parts = [b"first-", b"second-", b"third"]
            r = c.post(f"{a.url}{prefix}/chunked", content=iter(parts))
            assert r.json()["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    # The HTTP/2 connections to the upstreams were reused across requests.
    m = a.metrics()
    streams_b = b.metrics().value("gatehouse_http2_streams_total")
    conns_b = b.metrics().value("gatehouse_http2_connections_total")
    assert streams_b >= 4 and conns_b <= 2


def test_oversized_first_chunk_never_opens_an_upstream_stream(gatehouse, echo):
    b = gatehouse(simple_config(cluster("up", echo)), name="b")
    a = gatehouse(simple_config(
        {"name": "h2c", "protocol": "h2c", "endpoints": [f"127.0.0.1:{b.port}"]},
        limits={"max_body_bytes": 1000}), name="a")
    with a.conn() as conn:
        conn.send(b"POST /big HTTP/1.1\r\nHost: gh.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"111111113\r\nabc")
        assert conn.read_response().status == 413
    with httpx.Client(timeout=IO_TIMEOUT) as c:
        assert c.get(f"{a.url}/control").status_code == 200
    b.wait_log(lambda e: e["path"] == "/control")
    assert [e["path"] for e in b.access_log()] == ["/control"]


class HealthServer(GrpcServer):
    """A grpcio server with grpc.health.v1.Health/Check answering raw protobuf bytes."""

    def __init__(self):
        self.serving = True
        self.checks = 0
        super().__init__()

        def check(request, context):
            self.checks += 1
            return b"\x08\x01" if self.serving else b"\x08\x02"
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}),))


def test_grpc_health_checks(gatehouse, channel_factory):
    a, b = HealthServer(), HealthServer()
    try:
        c = {"name": "g", "protocol": "h2c",
             "endpoints": [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"],
             "health_check": {"type": "grpc", "interval": "100ms", "timeout": "90ms",
                              "healthy_threshold": 1, "unhealthy_threshold": 1}}
        gh = gatehouse(simple_config(c))

        def healthy(port):
            return gh.metrics().value("gatehouse_upstream_host_healthy", cluster="g",
                                      host=f"127.0.0.1:{port}")
        wait_until(lambda: a.checks >= 2 and b.checks >= 2)
        assert healthy(a.port) == 1 and healthy(b.port) == 1
        b.serving = False
        wait_until(lambda: healthy(b.port) == 0)
        unary = channel_factory(gh.port).unary_unary(f"/{SERVICE}/Unary")
        for _ in range(10):
            assert unary(b"x", timeout=IO_TIMEOUT) == b"x"
        b.serving = True
        wait_until(lambda: healthy(b.port) == 1)
    finally:
        a.stop()
        b.stop()


def grpc_frame(payload, flag=0):
    return bytes([flag]) + len(payload).to_bytes(4, "big") + payload


def parse_frames(body):
    frames = []
    while body:
        flag, n = body[0], int.from_bytes(body[1:5], "big")
        frames.append((flag, body[5:5 + n]))
        body = body[5 + n:]
    return frames


@pytest.mark.parametrize("text", [False, True])
def test_grpc_web_translation(gatehouse, grpc_server, text):
    import base64
    gh = gatehouse(simple_config(grpc_cluster(grpc_server.port)))
    ctype = "application/grpc-web-text" if text else "application/grpc-web+proto"
    body = grpc_frame(b"hello")
    if text:
        body = base64.b64encode(body)
    # A browser-style HTTP/1.1 request.
    r = httpx.post(f"{gh.url}/{SERVICE}/Unary", content=body, timeout=IO_TIMEOUT,
                   headers={"content-type": ctype, "x-grpc-web": "1", "x-tag": "w"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(
        "application/grpc-web-text" if text else "application/grpc-web")
    raw = r.content
    if text:
        # Each chunk is padded base64: decode segment by segment.
        out = b""
        for seg in raw.replace(b"\r", b"").replace(b"\n", b"").split(b"="):
            if seg:
                seg += b"=" * (-len(seg) % 4)
                out += base64.b64decode(seg)
        raw = out
    frames = parse_frames(raw)
    assert frames[0] == (0, b"olleh")
    assert frames[-1][0] == 0x80
    trailer_text = frames[-1][1].decode()
    assert "grpc-status:0" in trailer_text and "x-trailer:t-w" in trailer_text
