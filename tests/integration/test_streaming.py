"""Streaming responses (server-sent events, long polls) pass through without buffering: each
event reaches the client while the upstream is still holding the response open, over HTTP/1.1
and HTTP/2 downstream."""
import threading

import httpx
import pytest

from support import IO_TIMEOUT, simple_config
from support.streams import ThreadedUpstream
from test_http2 import H2Conn


class SseUpstream(ThreadedUpstream):
    """Answers any request with an event stream; event i+1 is sent only after release(i)."""

    def __init__(self, events=3, chunked=True):
        self.events = events
        self.chunked = chunked
        self.gates = [threading.Event() for _ in range(events)]
        super().__init__(backlog=8, io_timeout=IO_TIMEOUT * 2)

    def respond(self, conn):
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        head += b"transfer-encoding: chunked\r\n\r\n" if self.chunked else b"connection: close\r\n\r\n"
        conn.sendall(head)
        for i in range(self.events):
            ev = b"id: %d\ndata: event-%d\n\n" % (i, i)
            conn.sendall(b"%x\r\n%s\r\n" % (len(ev), ev) if self.chunked else ev)
            if not self.gates[i].wait(IO_TIMEOUT * 2):
                return
        if self.chunked:
            conn.sendall(b"0\r\n\r\n")

    def close(self):
        for g in self.gates:
            g.set()
        super().close()


@pytest.mark.parametrize("chunked", [True, False])
def test_sse_events_arrive_one_by_one_over_http1(gatehouse, chunked):
    up = SseUpstream(chunked=chunked)
    try:
        gh = gatehouse(simple_config({"name": "sse", "endpoints": [up.endpoint]}))
        with httpx.stream("GET", f"{gh.url}/events", timeout=IO_TIMEOUT * 2) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/event-stream"
            lines = (line.rstrip("\r\n") for line in r.iter_lines())
            for i in range(3):
                # The upstream holds event i+1 until this one reached the client.
                assert next(lines) == f"id: {i}"
                assert next(lines) == f"data: event-{i}"
                assert next(lines) == ""
                up.gates[i].set()
    finally:
        up.close()


def test_sse_events_arrive_one_by_one_over_http2(gatehouse):
    up = SseUpstream()
    try:
        gh = gatehouse(simple_config({"name": "sse", "endpoints": [up.endpoint]}))
        c = H2Conn(gh.port)
        sid = c.request("GET", "/events")
        for i in range(3):
            want = b"id: %d\ndata: event-%d\n\n" % (i, i)
            c.pump(lambda: want in bytes(c._resp(sid)["body"]))
            up.gates[i].set()
        r = c.response(sid)
        c.close()
        assert r["status"] == 200 and r["headers"]["content-type"] == "text/event-stream"
    finally:
        up.close()
