"""Client-side and upstream timeouts. Each test configures a short timeout and waits for its
effect with a generous deadline; nothing asserts how long anything took."""
import socket
import time

from support import IO_TIMEOUT, Reply, cluster, request_bytes, simple_config, wait_until


def closed_or_408(c, timeout=IO_TIMEOUT):
    """Reads until the server answers or closes; returns the status (408) or None if it just
    closed. Fails if neither happens before the deadline."""
    data = c.read_to_close(timeout=timeout)
    if not data:
        return None
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]
    return 408


def test_partial_head_gets_408_or_close_after_client_header_timeout(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder), timeouts={"client_header": "500ms"}))
    with gh.conn() as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: gh.test\r\nX-Partial: ")
        assert closed_or_408(c) == 408
    assert gh.metrics().value("gatehouse_client_timeouts_total") >= 1
    assert recorder.total_bytes() == 0


def test_slowloris_trickle_does_not_extend_header_deadline(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder),
                                 timeouts={"client_header": "1s"},
                                 limits={"max_headers": 1000}))
    sent = 0
    closed = False
    with gh.conn() as c:
        c.send(b"GET /loris HTTP/1.1\r\nHost: gh.test\r\n")
        deadline = time.monotonic() + IO_TIMEOUT
        # One header line per ~100 ms, each well inside the timeout; pacing comes from waiting
        # (with a timeout) for the server's reaction, which ends the loop.
        for i in range(1000):
            if time.monotonic() > deadline:
                break
            try:
                c.send(f"X-Drip-{i}: {i}\r\n".encode())
                sent += 1
            except OSError:
                closed = True
                break
            c.sock.settimeout(0.1)
            try:
                b = c.sock.recv(4096)
            except (socket.timeout, TimeoutError):
                continue
            except ConnectionResetError:
                b = b""
            closed = True
            if b:
                assert b.startswith(b"HTTP/1.1 408 "), b[:200]
            break
    assert closed, f"connection still open after {sent} trickled header lines"
    assert recorder.total_bytes() == 0


def test_silent_new_connection_is_closed_after_client_header_timeout(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder), timeouts={"client_header": "500ms"}))
    with gh.conn() as c:
        assert c.read_to_close() == b""


def test_idle_keepalive_connection_is_closed(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), timeouts={"keepalive_idle": "500ms"}))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/once"))
        assert c.read_response().status == 200
        # Nothing more is sent: the gateway closes the idle connection, without a response.
        assert c.read_to_close() == b""
    wait_until(lambda: gh.metrics().value("gatehouse_connections_active") == 0,
               message="connections_active to drop to 0")


def test_stalled_request_body_is_cut_and_never_completed_upstream(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder), timeouts={"client_body": "500ms"}))
    with gh.conn() as c:
        c.send(request_bytes("POST", "/stall", headers=[("Content-Length", "100")]) + b"x" * 10)
        data = c.read_to_close()
        if data:
            assert data.startswith(b"HTTP/1.1 408 ") or data.startswith(b"HTTP/1.1 400 "), \
                data[:200]
    assert recorder.request_list() == [], "a request with a stalled body was completed upstream"


def test_stalled_upstream_body_is_cut_by_upstream_idle_timeout(gatehouse, recorder):
    # The upstream sends part of its body and then nothing, without closing.
    recorder.script.append(Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"s" * 10))
    gh = gatehouse(simple_config(cluster("rec", recorder, idle_timeout="500ms")))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/stall"))
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        rest = c.read_to_close()
    assert rest == b"s" * 10


def test_request_total_timeout_bounds_the_whole_exchange(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo),
                                 timeouts={"request_total": "300ms", "upstream_response": "30s"}))
    with gh.conn(timeout=10) as c:
        c.send(request_bytes("GET", "/slow", headers=[("x-echo-delay", "2")]))
        r = c.read_response()
    assert r.status == 504
