"""Keep-alive, pipelining, upstream connection reuse, HTTP/1.0 and Connection: close."""
import http.client
import socket
import threading

import pytest

from support import cluster, request_bytes, simple_config, chunked


def accepted(gh):
    return gh.metrics().value("gatehouse_connections_accepted_total")


def test_many_requests_on_one_client_connection(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    before = accepted(gh)
    c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=15)
    try:
        for i in range(100):
            c.request("GET", f"/ka/{i}")
            r = c.getresponse()
            assert r.status == 200
            body = r.read()
            assert f"/ka/{i}".encode() in body
            assert r.getheader("connection") is None or r.getheader("connection").lower() != "close"
    finally:
        c.close()
    # http.client silently reconnects after a close; the accept counter says it never did.
    assert accepted(gh) - before == 1


def test_pipelined_requests_in_one_write_are_answered_in_order(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/p1")
               + request_bytes("POST", "/p2", body=b"x" * 1000)
               + request_bytes("GET", "/p3", headers=[("x-echo-delay", "0.05")])
               + request_bytes("DELETE", "/p4"))
        got = [c.read_response().json() for _ in range(4)]
    assert [g["path"] for g in got] == ["/p1", "/p2", "/p3", "/p4"]
    assert [g["method"] for g in got] == ["GET", "POST", "GET", "DELETE"]
    assert got[1]["body_length"] == 1000


def test_pipelined_requests_with_chunked_body_and_local_replies(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), routes=[
        {"name": "local", "match": {"path_prefix": "/local"},
         "direct_response": {"status": 200, "body": "L"}},
        {"name": "up", "match": {"path_prefix": "/"}, "cluster": "echo"}]))
    with gh.conn() as c:
        c.send(request_bytes("POST", "/up1", headers=[("Transfer-Encoding", "chunked")],
                             body=chunked(b"hello ", b"world"))
               + request_bytes("GET", "/local")
               + request_bytes("GET", "/up2"))
        r1, r2, r3 = (c.read_response() for _ in range(3))
    assert r1.json()["path"] == "/up1" and r1.json()["body_length"] == 11
    assert r2.body == b"L"
    assert r3.json()["path"] == "/up2"


def test_upstream_connections_are_reused(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    m0 = gh.metrics()
    c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=15)
    try:
        for i in range(50):
            c.request("GET", f"/reuse/{i}")
            r = c.getresponse()
            assert r.status == 200
            r.read()
    finally:
        c.close()
    m = gh.metrics()
    reused = m.value("gatehouse_upstream_pool_reused_total", cluster="echo") - \
        m0.value("gatehouse_upstream_pool_reused_total", cluster="echo")
    new = m.value("gatehouse_upstream_pool_new_total", cluster="echo") - \
        m0.value("gatehouse_upstream_pool_new_total", cluster="echo")
    assert reused + new == 50
    assert new <= 2, f"{new} new upstream connections for 50 sequential requests"
    assert reused >= 48
    assert echo.connections <= 2
    assert m.value("gatehouse_upstream_pool_reuse_ratio", cluster="echo") > 0.9


def test_upstream_connection_closed_by_upstream_is_not_reused(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/a", headers=[("x-echo-close", "1")]))
        a = c.read_response()
        c.send(request_bytes("GET", "/b"))
        b = c.read_response()
    assert a.status == 200 and b.status == 200
    # The client connection survives an upstream that closes its own connection.
    assert a.header("connection") is None
    assert a.json()["conn"] != b.json()["conn"]


def test_http10_request_gets_length_framed_answer_and_close(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(b"GET /old HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.version in ("HTTP/1.1", "HTTP/1.0")
        assert int(r.header("content-length")) == len(r.body)
        assert r.json()["path"] == "/old"
        assert r.header("transfer-encoding") is None
        assert c.wait_closed(), "HTTP/1.0 connection without keep-alive was not closed"


def test_http10_client_gets_close_delimited_body_from_chunked_upstream(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(b"GET /gen HTTP/1.0\r\nx-echo-chunked: 1\r\nx-echo-body-size: 200000\r\n\r\n")
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
        low = head.lower()
        assert b"transfer-encoding" not in low, "chunked framing sent to an HTTP/1.0 client"
        body = c.read_to_close()
    assert len(body) == 200000  # the end of the body is the end of the connection


def test_http10_keep_alive_is_honoured(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    before = accepted(gh)
    with gh.conn() as c:
        for i in range(3):
            c.send(f"GET /k{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == f"/k{i}"
            assert (r.header("connection") or "").lower() == "keep-alive"
    assert accepted(gh) - before == 1


def test_connection_close_is_honoured(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/bye", headers=[("Connection", "close")])
               + request_bytes("GET", "/never"))
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/bye"
        assert (r.header("connection") or "").lower() == "close"
        rest = c.read_to_close()
        assert rest == b"", f"bytes after a Connection: close response: {rest[:100]!r}"
    assert [q["path"] for q in echo.requests] == ["/bye"]


def test_local_reply_with_connection_close(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder), routes=[
        {"name": "local", "match": {"path_prefix": "/"},
         "direct_response": {"status": 200, "body": "ok"}}]))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/", headers=[("Connection", "close")]))
        r = c.read_response()
        assert r.body == b"ok" and (r.header("connection") or "").lower() == "close"
        assert c.wait_closed()


@pytest.mark.parametrize("n", [2, 3])
def test_pipelined_requests_spanning_writes(gatehouse, echo, n):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    data = b"".join(request_bytes("GET", f"/s{i}") for i in range(n))
    with gh.conn() as c:
        # Split in the middle of the second request's head.
        cut = len(request_bytes("GET", "/s0")) + 7
        c.send(data[:cut])
        first = c.read_response()
        c.send(data[cut:])
        rest = [c.read_response() for _ in range(n - 1)]
    assert [r.json()["path"] for r in [first, *rest]] == [f"/s{i}" for i in range(n)]


def test_concurrent_keepalive_clients_get_their_own_answers(gatehouse, echo, echo2):
    gh = gatehouse(simple_config(cluster("pair", echo, echo2)))
    nthreads, per_thread = 16, 25
    errors = []
    done = [0] * nthreads

    def client(tid):
        try:
            with gh.conn() as c:
                for i in range(per_thread):
                    body = (f"{tid}:{i}:" + "x" * (i * 97 % 3000)).encode()
                    path = f"/c/{tid}/{i}"
                    if i % 2:
                        c.send(request_bytes("POST", path, body=body))
                    else:
                        c.send(request_bytes("GET", path))
                    r = c.read_response()
                    j = r.json()
                    if r.status != 200 or j["path"] != path or \
                            j["body_length"] != (len(body) if i % 2 else 0):
                        errors.append((tid, i, r.status, j.get("path")))
                    done[tid] += 1
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append((tid, repr(e)))

    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert done == [per_thread] * nthreads
    assert echo.request_count() + echo2.request_count() == nthreads * per_thread


def test_fifty_pipelined_requests_in_one_write(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(b"".join(request_bytes("GET", f"/p{i}") for i in range(50)))
        paths = [c.read_response().json()["path"] for _ in range(50)]
    assert paths == [f"/p{i}" for i in range(50)]


def test_request_trickled_byte_by_byte(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    raw = request_bytes("POST", "/trickle", headers=[("X-Some", "value")], body=b"0123456789")
    with gh.conn() as c:
        for i in range(len(raw)):
            c.send(raw[i:i + 1])
        j = c.read_response().json()
    assert j["path"] == "/trickle" and j["body_length"] == 10


def test_client_half_close_while_waiting_for_the_upstream_abandons_the_request(gatehouse, echo):
    """A FIN while the request waits for its upstream is a client hang-up, as NGINX (with
    proxy_ignore_client_abort off, its default) and Envoy take it: a closed socket looks just
    the same. The request is abandoned (499 in the log) and the connection closed, unanswered."""
    gh = gatehouse(simple_config(cluster("echo", echo)))
    try:
        with gh.conn() as c:
            c.send(request_bytes("GET", "/half", headers=[("x-echo-wait", "half")]))
            c.sock.shutdown(socket.SHUT_WR)
            # The upstream is held until the end: only the hang-up can close this connection.
            assert c.read_to_close(timeout=10) == b""
    finally:
        echo.release("half")
