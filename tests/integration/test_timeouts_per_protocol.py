"""Timeouts per protocol (issue #6, item 7): request_total bounds unary HTTP only; an SSE
stream, a WebSocket tunnel and a gRPC stream get their own idle bounds instead, and every
timeout close is counted in gatehouse_timeouts_total{reason} and named in the access log."""
import queue
import time

import grpc
import httpx
import pytest

from support import IO_TIMEOUT, cluster, simple_config, wait_until
from support.streams import SseClient, SseTicker, WsClients, WsEchoServer
from test_grpc import SERVICE, GrpcServer, grpc_cluster


def timeouts(gh, reason):
    return gh.metrics().get_value("gatehouse_timeouts_total", reason=reason) or 0


def logged_errors(gh):
    return [r.get("error") for r in gh.access_log()]


def test_request_total_cuts_unary_but_not_sse(gatehouse, echo):
    sse = SseTicker(interval=0.2)
    try:
        gh = gatehouse(simple_config(
            cluster("echo", echo), {"name": "sse", "endpoints": [sse.endpoint]},
            routes=[{"name": "sse", "match": {"path_prefix": "/events"}, "cluster": "sse"},
                    {"name": "unary", "match": {"path_prefix": "/"}, "cluster": "echo"}],
            timeouts={"request_total": "400ms"}))
        # Unary: a slow upstream is cut at request_total.
        r = httpx.get(f"{gh.url}/slow", headers={"x-echo-delay": "5"}, timeout=IO_TIMEOUT * 2)
        assert r.status_code == 504
        assert timeouts(gh, "request_total") == 1
        # SSE: the stream outlives request_total several times over.
        c = SseClient(gh.port)
        assert c.status == 200
        t0 = time.monotonic()
        seen = []
        while time.monotonic() - t0 < 1.5:
            seen.append(c.next_event())
        assert len(seen) >= 3 and seen[0] == "tick-0"
        c.close()
        assert timeouts(gh, "request_total") == 1
    finally:
        sse.close()


def test_sse_idle_closes_a_silent_event_stream(gatehouse):
    sse = SseTicker(interval=0.1, silent_after=2)
    try:
        gh = gatehouse(simple_config({"name": "sse", "endpoints": [sse.endpoint]},
                                     timeouts={"sse_idle": "300ms", "upstream_idle": "60s"},
                                     access_log={"fields": ["path", "status", "error"]}))
        c = SseClient(gh.port)
        assert c.next_event() == "tick-0"
        assert c.next_event() == "tick-1"
        t0 = time.monotonic()
        with pytest.raises(ConnectionError):
            c.next_event()
        assert time.monotonic() - t0 >= 0.2
        c.close()
        wait_until(lambda: timeouts(gh, "sse_idle") == 1, message="sse_idle counted")
        wait_until(lambda: "timeout: sse_idle" in logged_errors(gh), message="logged")
    finally:
        sse.close()


def test_route_sse_idle_override_and_lifetime(gatehouse):
    sse = SseTicker(interval=0.1)
    try:
        gh = gatehouse(simple_config(
            {"name": "sse", "endpoints": [sse.endpoint]},
            routes=[{"name": "sse", "match": {"path_prefix": "/"}, "cluster": "sse",
                     "timeouts": {"sse_max_lifetime": "600ms"}}]))
        c = SseClient(gh.port)
        t0 = time.monotonic()
        with pytest.raises(ConnectionError):
            for _ in range(100000):
                c.next_event()
        assert time.monotonic() - t0 >= 0.5
        c.close()
        wait_until(lambda: timeouts(gh, "sse_lifetime") == 1, message="sse_lifetime counted")
    finally:
        sse.close()


def test_route_request_total_override(gatehouse, echo):
    gh = gatehouse(simple_config(
        cluster("echo", echo),
        routes=[{"name": "fast", "match": {"path_prefix": "/fast"}, "cluster": "echo",
                 "timeouts": {"request_total": "300ms"}},
                {"name": "other", "match": {"path_prefix": "/"}, "cluster": "echo"}]))
    r = httpx.get(f"{gh.url}/fast", headers={"x-echo-delay": "5"}, timeout=IO_TIMEOUT * 2)
    assert r.status_code == 504
    r = httpx.get(f"{gh.url}/other", headers={"x-echo-delay": "0.6"}, timeout=IO_TIMEOUT * 2)
    assert r.status_code == 200
    assert timeouts(gh, "request_total") == 1


def test_websocket_is_not_cut_by_request_total(gatehouse):
    up = WsEchoServer()
    clients = WsClients()
    try:
        gh = gatehouse(simple_config({"name": "ws", "endpoints": [up.endpoint]},
                                     timeouts={"request_total": "300ms"}))
        ws = clients.open(f"ws://127.0.0.1:{gh.port}/ws")
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 1.2:
            assert clients.echo(ws, f"m{n}") == f"m{n}"
            n += 1
            time.sleep(0.05)
        assert timeouts(gh, "request_total") == 0
    finally:
        clients.close()
        up.close()


@pytest.fixture
def grpc_server():
    s = GrpcServer()
    yield s
    s.stop()


def test_grpc_stream_is_not_cut_by_request_total_and_grpc_unary_is_per_route(
        gatehouse, grpc_server):
    g = grpc_cluster(grpc_server.port)
    gh = gatehouse(simple_config(
        g,
        routes=[{"name": "slow", "match": {"path_exact": f"/{SERVICE}/Slow"}, "cluster": "g",
                 "timeouts": {"grpc_unary": "300ms"}},
                {"name": "rest", "match": {"path_prefix": "/"}, "cluster": "g"}],
        timeouts={"request_total": "300ms"}))
    ch = grpc.insecure_channel(f"127.0.0.1:{gh.port}")
    try:
        outbox = queue.Queue()

        def requests():
            while True:
                m = outbox.get(timeout=IO_TIMEOUT * 2)
                if m is None:
                    return
                yield m
        bidi = ch.stream_stream(f"/{SERVICE}/Bidi")
        replies = bidi(requests(), timeout=IO_TIMEOUT * 4)
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 1.2:  # four times request_total
            outbox.put(b"m%d" % n)
            assert next(replies) == b"echo:m%d" % n
            n += 1
            time.sleep(0.1)
        outbox.put(None)
        assert list(replies) == []
        # A unary call on the route with grpc_unary is cut by the gateway.
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary(f"/{SERVICE}/Slow")(b"x", timeout=IO_TIMEOUT * 2)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 >= 0.25
        assert timeouts(gh, "grpc_unary") == 1
        assert timeouts(gh, "request_total") == 0
    finally:
        ch.close()


def test_grpc_stream_idle_bounds_a_silent_call(gatehouse, grpc_server):
    gh = gatehouse(simple_config(grpc_cluster(grpc_server.port),
                                 timeouts={"grpc_stream_idle": "400ms"}))
    ch = grpc.insecure_channel(f"127.0.0.1:{gh.port}")
    try:
        outbox = queue.Queue()

        def requests():
            yield b"first"
            outbox.get(timeout=IO_TIMEOUT * 4)  # then silence from the client
        replies = ch.stream_stream(f"/{SERVICE}/Bidi")(requests(), timeout=IO_TIMEOUT * 4)
        assert next(replies) == b"echo:first"
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError):
            next(replies)
        assert time.monotonic() - t0 >= 0.3
        outbox.put(None)
        wait_until(lambda: timeouts(gh, "grpc_stream_idle") >= 1, message="grpc_stream_idle")
    finally:
        ch.close()


def test_timeout_reasons_are_all_exported(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    m = gh.metrics()
    for reason in ("client_header", "client_body", "client_write", "idle_keepalive",
                   "upstream_connect", "upstream_header", "upstream_idle", "request_total",
                   "grpc_deadline", "grpc_unary", "grpc_stream_idle", "websocket_idle",
                   "websocket_lifetime", "sse_idle", "sse_lifetime", "stream_drain_age"):
        assert m.value("gatehouse_timeouts_total", reason=reason) == 0


def test_upstream_header_and_idle_keepalive_are_counted(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo),
                                 timeouts={"upstream_response": "300ms",
                                           "keepalive_idle": "300ms"}))
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        r = c.get(f"{gh.url}/x", headers={"x-echo-delay": "5"})
        assert r.status_code == 504
    wait_until(lambda: timeouts(gh, "upstream_header") == 1, message="upstream_header")
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        assert c.get(f"{gh.url}/ok").status_code == 200
        wait_until(lambda: timeouts(gh, "idle_keepalive") >= 1, message="idle_keepalive",
                   timeout=IO_TIMEOUT * 2)


def test_sse_over_an_http2_upstream_is_a_stream_too(gatehouse):
    sse = SseTicker(interval=0.2)
    try:
        # The middle gatehouse speaks h2c downstream; the front one uses it as an h2c upstream.
        mid = gatehouse(simple_config({"name": "sse", "endpoints": [sse.endpoint]}), name="mid")
        front = gatehouse(simple_config(
            {"name": "mid", "protocol": "h2c", "endpoints": [f"127.0.0.1:{mid.port}"]},
            timeouts={"request_total": "400ms"}), name="front")
        c = SseClient(front.port)
        assert c.status == 200
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 1.5:
            assert c.next_event().startswith("tick-")
            n += 1
        assert n >= 3
        c.close()
        assert timeouts(front, "request_total") == 0
    finally:
        sse.close()
