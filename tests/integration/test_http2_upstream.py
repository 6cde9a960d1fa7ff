"""The upstream HTTP/2 client against a real HTTP/2 server (support.h2server, on the `h2`
library) that misbehaves on purpose: GOAWAY with streams it never processed, REFUSED_STREAM,
and a SETTINGS_MAX_CONCURRENT_STREAMS of 2. Each unprocessed request is retried (even a POST:
the server surely never saw it) and the pool opens another connection when every connection is
at the peer's stream limit."""
import json

import pytest

from support import IO_TIMEOUT, simple_config, wait_until
from support.h2server import H2Server
from test_http2 import H2Conn


@pytest.fixture
def h2_upstream():
    servers = []

    def make(**kw):
        s = H2Server(**kw).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


def h2_cluster(srv):
    return {"name": "h2", "protocol": "h2c", "endpoints": [srv.endpoint]}


def body_of(resp):
    return json.loads(bytes(resp["body"]))


def burst(c, requests):
    """Sends every request's HEADERS (and body) in one write: the gateway starts all of them in
    one loop turn, so they share one upstream connection."""
    sids = []
    for method, path, body in requests:
        sid = c.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", "127.0.0.1")]
        if body is not None:
            hdrs.append(("content-length", str(len(body))))
        c.conn.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            c.conn.send_data(sid, body, end_stream=True)
        sids.append(sid)
    c.flush()
    return sids


def refused_retries(gh):
    return gh.metrics().value("gatehouse_upstream_retries_total", cluster="h2",
                              reason="refused_stream")


def test_goaway_streams_past_last_stream_id_are_retried_on_a_new_connection(gatehouse,
                                                                              h2_upstream):
    # The upstream answers the first request of its first connection, then sends
    # GOAWAY(last_stream_id = that stream) and closes: the other two streams were never
    # processed, so both go again on a new connection -- the POST too.
    srv = h2_upstream(goaway_after=3)
    gh = gatehouse(simple_config(h2_cluster(srv)), workers=1)
    c = H2Conn(gh.port)
    sids = burst(c, [("GET", "/first", None), ("GET", "/second", None),
                     ("POST", "/third", b"x" * 1000)])
    resps = [c.response(sid) for sid in sids]
    c.close()
    assert [r["status"] for r in resps] == [200, 200, 200], resps
    served = [body_of(r) for r in resps]
    assert served[0]["conn"] == 1 and served[0]["path"] == "/first"
    assert served[1]["conn"] == 2 and served[1]["path"] == "/second"
    assert served[2]["conn"] == 2 and served[2]["path"] == "/third"
    assert served[2]["method"] == "POST" and served[2]["body_length"] == 1000
    # Connection 1 saw all three; it answered one.
    first = [r for r in srv.requests if r["conn"] == 1]
    assert sorted(r["path"] for r in first) == ["/first", "/second", "/third"]
    assert srv.connections == 2
    wait_until(lambda: refused_retries(gh) >= 2)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_refused_stream_is_retried(gatehouse, h2_upstream, method):
    srv = h2_upstream(refuse=lambda n: n == 0)  # the server's very first request
    gh = gatehouse(simple_config(h2_cluster(srv),
                                 access_log={"fields": ["path", "status", "attempts", "error"]}),
                   workers=1)
    c = H2Conn(gh.port)
    body = b"payload" if method == "POST" else None
    sid = c.request(method, "/refused", headers=[("content-length", "7")] if body else (),
                    body=body)
    r = c.response(sid)
    c.close()
    assert r["status"] == 200, (r, gh.access_log(), srv.requests)
    assert body_of(r)["body_length"] == (7 if body else 0)
    assert [(x["path"], x["action"]) for x in srv.requests] == [("/refused", "refused"),
                                                               ("/refused", "answered")]
    wait_until(lambda: refused_retries(gh) >= 1)
    log = gh.wait_log(lambda rec: rec.get("path") == "/refused")
    assert log["status"] == 200 and log["attempts"] == 2


def test_another_connection_is_opened_at_the_peers_stream_limit(gatehouse, h2_upstream):
    # The upstream allows 2 concurrent streams. With its SETTINGS known (a first request),
    # five requests held at the upstream need three connections, none over the limit and
    # none refused.
    srv = h2_upstream(max_concurrent_streams=2)
    gh = gatehouse(simple_config(h2_cluster(srv)), workers=1)
    c = H2Conn(gh.port)
    assert c.response(c.request("GET", "/warm-up"))["status"] == 200
    sids = []
    for i in range(5):
        srv.hold(f"/held/{i}")
        sids.append(c.request("GET", f"/held/{i}"))
        srv.wait_requests(2 + i)  # this one reached the upstream before the next is sent
    srv.release()
    resps = [c.response(sid) for sid in sids]
    c.close()
    assert [r["status"] for r in resps] == [200] * 5
    assert srv.connections == 3
    assert all(n <= 2 for n in srv.max_active.values()), srv.max_active
    assert not [r for r in srv.requests if r["action"] == "refused"]
    by_conn = sorted(body_of(r)["conn"] for r in resps)
    assert by_conn == [1, 1, 2, 2, 3]


def test_a_burst_over_the_peers_stream_limit_is_served(gatehouse, h2_upstream):
    # Five streams at once against a limit of 2: new connections for the excess. A stream
    # sent before a new connection's SETTINGS arrived may be refused; it is retried.
    srv = h2_upstream(max_concurrent_streams=2)
    gh = gatehouse(simple_config(h2_cluster(srv)), workers=1)
    c = H2Conn(gh.port)
    assert c.response(c.request("GET", "/warm-up"))["status"] == 200
    for i in range(5):
        srv.hold(f"/b/{i}")
    sids = burst(c, [("GET", f"/b/{i}", None) for i in range(5)])
    srv.wait_requests(1 + 5)
    srv.release()
    resps = [c.response(sid, timeout=IO_TIMEOUT * 3) for sid in sids]
    c.close()
    assert [r["status"] for r in resps] == [200] * 5, resps
    assert srv.connections >= 3
    assert all(n <= 2 for n in srv.max_active.values()), srv.max_active
