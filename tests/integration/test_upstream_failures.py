"""Upstream failures: refused connections, timeouts, malformed responses, connections closed
mid-body, and early responses."""
import re
import socket
import struct

import pytest

from support import (Reply, cluster, free_port, gen_blocks, request_bytes, simple_config,
                      wait_until)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_refused_upstream_is_502_json_with_request_id(gatehouse):
    dead = f"127.0.0.1:{free_port()}"
    gh = gatehouse(simple_config(cluster("dead", dead)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/x", headers=[("X-Request-ID", "req-502-check")]))
        r = c.read_response()
        assert r.status == 502
        assert r.header("content-type").startswith("application/json")
        j = r.json()
        assert j["status"] == 502 and j["request_id"] == "req-502-check"
        # A 502 from a connect failure does not cost the client its connection.
        c.send(request_bytes("GET", "/y"))
        r = c.read_response()
        assert r.status == 502 and UUID4.match(r.json()["request_id"])
    m = gh.metrics()
    assert m.value("gatehouse_upstream_connect_failures_total", cluster="dead") >= 2
    e = gh.wait_log(lambda e: e.get("request_id") == "req-502-check")
    assert e["status"] == 502


def test_dead_endpoint_is_skipped_by_connect_retry(gatehouse, echo):
    dead = f"127.0.0.1:{free_port()}"
    gh = gatehouse(simple_config(cluster("mixed", dead, echo)))
    with gh.conn() as c:
        for i in range(6):
            c.send(request_bytes("GET", f"/r{i}"))
            r = c.read_response()
            assert r.status == 200, f"request {i}: {r.status} {r.body[:200]!r}"
    assert gh.metrics().value("gatehouse_upstream_retries_total", cluster="mixed",
                             reason="connect_failure") >= 1


def test_upstream_response_timeout_is_504(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo, response_timeout="300ms")))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/slow", headers=[("x-echo-delay", "1.5"),
                                                     ("X-Request-ID", "slow-1")]))
        r = c.read_response()
        assert r.status == 504
        assert r.json()["request_id"] == "slow-1"
        # The timed-out upstream connection must not be reused: its late answer belongs to
        # /slow and would otherwise be served as the answer to the next request.
        c.send(request_bytes("GET", "/second"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.json()["path"] == "/second"
    assert gh.metrics().value("gatehouse_upstream_timeouts_total", cluster="echo") >= 1


def test_route_timeout_overrides_upstream_response_timeout(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), routes=[
        {"name": "short", "match": {"path_prefix": "/short"}, "cluster": "echo",
         "timeout": "200ms"},
        {"name": "long", "match": {"path_prefix": "/"}, "cluster": "echo"}]))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/short", headers=[("x-echo-delay", "1.5")]))
        assert c.read_response().status == 504
    with gh.conn() as c:
        c.send(request_bytes("GET", "/long", headers=[("x-echo-delay", "0.3")]))
        assert c.read_response().status == 200


BAD_RESPONSES = {
    "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n",
    "garbage_status_line": b"HTTP/1.1 OK 200\r\nContent-Length: 2\r\n\r\nok",
    "not_http": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "two_content_lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    "bad_content_length": b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
    "four_digit_status": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "space_before_colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "bare_lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "obs_fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok",
    "nul_in_header": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "http2_version": b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("name", list(BAD_RESPONSES))
def test_malformed_upstream_response_is_502_and_connection_not_reused(gatehouse, recorder, name):
    # The bad reply leaves the upstream connection open: only the gateway can decide to drop it.
    recorder.script.append(Reply(BAD_RESPONSES[name]))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/bad"))
        r = c.read_response()
        assert r.status == 502, (r.status, r.body[:200])
        assert r.json()["status"] == 502
        c.send(request_bytes("GET", "/good"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"recorded"
    reqs = recorder.request_list()
    assert [q.request_line.split()[1] for q in reqs] == ["/bad", "/good"]
    assert reqs[0].conn != reqs[1].conn, "the connection that sent garbage was reused"
    assert gh.metrics().value("gatehouse_upstream_bad_responses_total", cluster="rec") >= 1


def test_upstream_closing_before_any_response_is_502(gatehouse, recorder):
    recorder.script.append(Reply(None, close=True))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("POST", "/x", body=b"abc"))
        r = c.read_response()
        assert r.status == 502


def test_upstream_response_head_over_limit_is_502(gatehouse, recorder):
    huge = b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * 3000 + b"\r\nContent-Length: 2\r\n\r\nok"
    recorder.script.append(Reply(huge))
    gh = gatehouse(simple_config(cluster("rec", recorder),
                                 limits={"max_header_bytes": 2048}))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/x"))
        assert c.read_response().status == 502


LOG_FIELDS = {"fields": ["request_id", "path", "status", "route", "upstream", "bytes_out",
                         "error"]}


def dechunk_partial(raw: bytes):
    """Decodes a possibly truncated chunked body -> (data, terminated)."""
    out, i = [], 0
    for _ in range(1 << 20):
        j = raw.find(b"\r\n", i)
        if j < 0:
            break
        size = int(raw[i:j].split(b";")[0], 16)
        if size == 0:
            return b"".join(out), True
        out.append(raw[j + 2:j + 2 + size])
        i = j + 2 + size + 2
        if i > len(raw):
            break
    return b"".join(out), False


@pytest.mark.parametrize("fin_with_data", [False, True], ids=["fin-later", "fin-with-data"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upstream_closing_mid_body_truncates_client_response(gatehouse, recorder, framing,
                                                             fin_with_data):
    part = b"p" * 1000
    if framing == "content-length":
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + part
    else:
        reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(part)
                 + part + b"\r\n")
    recorder.script.append(Reply(reply, close=True, fin_with_data=fin_with_data))
    gh = gatehouse(simple_config(cluster("rec", recorder), access_log=LOG_FIELDS))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/cut"))
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        # Must end (EOF) rather than hang; read_to_close raises on its deadline.
        rest = c.read_to_close()
    if framing == "content-length":
        assert rest == part
    else:
        data, terminated = dechunk_partial(rest)
        assert data == part
        assert not terminated, "truncated chunked body was terminated cleanly"
    e = gh.wait_log(lambda e: e.get("path") == "/cut")
    assert e["status"] == 200
    assert e["error"], "a truncated response is logged with an error"


@pytest.mark.parametrize("fin_with_data", [False, True], ids=["fin-later", "fin-with-data"])
def test_close_delimited_upstream_body_is_rechunked_and_complete(gatehouse, recorder,
                                                                 fin_with_data):
    part = b"d" * 5000
    # HTTP/1.0-style answer: no length, the body ends when the upstream closes.
    recorder.script.append(Reply(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + part,
                                 close=True, fin_with_data=fin_with_data))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/old-server"))
        r = c.read_response()
        assert r.status == 200 and r.chunked and r.body == part
        # The client connection survives: the chunked framing ended the response.
        c.send(request_bytes("GET", "/next"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"recorded"


def test_early_upstream_response_relayed_after_client_sends_whole_body(gatehouse, recorder):
    # The upstream answers as soon as the head arrives and drains the body it does not want.
    recorder.script.append(Reply(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n"
                                 b"Connection: close\r\n\r\ndenied", close=True, early=True))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    total = 2 << 20
    with gh.conn(timeout=30) as c:
        c.send(request_bytes("POST", "/upload", headers=[("Content-Length", str(total))]))
        try:
            for b in gen_blocks(total):
                c.send(b)
        except OSError:
            pass  # the gateway may stop reading once it has the answer
        r = c.read_response()
        assert r.status == 403 and r.body == b"denied"


def test_early_upstream_response_relayed_before_body_complete(gatehouse, recorder):
    recorder.script.append(Reply(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n"
                                 b"Connection: close\r\n\r\nbig", close=True, early=True))
    gh = gatehouse(simple_config(cluster("rec", recorder),
                                 timeouts={"client_body": "60s"}))
    with gh.conn(timeout=8) as c:
        c.send(request_bytes("PUT", "/blob", headers=[("Content-Length", str(10 << 20))]))
        c.send(b"q" * 65536)  # then wait for the answer, as curl does after an early reply
        r = c.read_response()
        assert r.status == 413 and r.body == b"big"


def test_reused_connection_closed_by_upstream_is_retried_for_idempotent_request(gatehouse,
                                                                               recorder):
    # The upstream answers keep-alive, then closes: the pooled connection is dead on reuse.
    recorder.script.append(Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", close=True))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/one"))
        assert c.read_response().body == b"first"
        wait_until(lambda: all(not t.is_alive() for t in recorder.threads),
                   message="the upstream to close its first connection")
        c.send(request_bytes("GET", "/two"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"recorded"


def test_connection_limit_per_endpoint_gives_503_and_frees_the_slot(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo, pool_max_per_endpoint=1,
                                         pool_max_idle_per_endpoint=1)), workers=1)
    with gh.conn() as busy:
        busy.send(request_bytes("GET", "/hold", headers=[("x-echo-wait", "hold")]))
        wait_until(lambda: echo.request_count() == 1, message="the first request upstream")
        with gh.conn() as c:
            c.send(request_bytes("GET", "/second"))
            r = c.read_response()
            assert r.status == 503 and r.json()["status"] == 503
        echo.release("hold")
        assert busy.read_response().status == 200
    with gh.conn() as c:
        c.send(request_bytes("GET", "/third"))
        assert c.read_response().status == 200


def _fail_by_timeout(gh, echo, recorder):
    with gh.conn() as c:
        c.send(request_bytes("GET", "/t", headers=[("x-echo-delay", "1")]))
        assert c.read_response().status == 504


def _fail_by_body_limit(gh, echo, recorder):
    with gh.conn() as c:
        c.send(request_bytes("POST", "/b", headers=[("Transfer-Encoding", "chunked")])
               + b"800\r\n" + b"c" * 0x800 + b"\r\n0\r\n\r\n")
        assert c.read_response().status == 413


def _fail_by_client_body_timeout(gh, echo, recorder):
    with gh.conn() as c:
        c.send(request_bytes("POST", "/s", headers=[("Content-Length", "100")]) + b"x")
        c.read_to_close()


def _fail_by_client_abort_mid_response(gh, echo, recorder):
    c = gh.conn()
    c.send(request_bytes("GET", "/big", headers=[("x-echo-body-size", str(64 << 20))]))
    c.read_until(b"\r\n\r\n")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # RST while the gateway is still writing


@pytest.mark.parametrize("fail", [_fail_by_timeout, _fail_by_body_limit,
                                  _fail_by_client_body_timeout,
                                  _fail_by_client_abort_mid_response],
                         ids=["504", "413", "client-body-timeout", "client-abort"])
def test_failed_exchange_releases_its_connection_slot(gatehouse, echo, recorder, fail):
    # One connection allowed per endpoint: a slot leaked by the failure path would turn every
    # later request into a 503.
    gh = gatehouse(simple_config(cluster("echo", echo, pool_max_per_endpoint=1,
                                         pool_max_idle_per_endpoint=1, response_timeout="200ms"),
                                 limits={"max_body_bytes": 1000},
                                 timeouts={"client_body": "300ms"}), workers=1)
    fail(gh, echo, recorder)

    def ok():
        with gh.conn() as c:
            c.send(request_bytes("GET", "/after"))
            r = c.read_response()
            assert r.status in (200, 503), r.status
            return r.status == 200
    wait_until(ok, interval=0.1, message="a request to succeed after the failure")
