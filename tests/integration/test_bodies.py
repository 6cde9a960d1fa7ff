"""Request and response bodies: chunked in both directions, trailers, large streamed bodies
(with a memory bound), Expect: 100-continue, HEAD and 204/304 framing."""
import hashlib

import pytest

from support import (Reply, chunked, cluster, gen_blocks, gen_sha256, is_sanitized_binary,
                      request_bytes, simple_config)

MiB = 1 << 20
BIG = 64 * MiB


def test_chunked_request_body_is_reencoded_for_upstream(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    raw_body = (b"5;ext=secret\r\nhello\r\n"
                b"1\r\n \r\n"
                b"A;x=\"quoted\"\r\n0123456789\r\n"
                b"0\r\n\r\n")
    with gh.conn() as c:
        c.send(request_bytes("POST", "/chunked", headers=[("Transfer-Encoding", "chunked")])
               + raw_body)
        r = c.read_response()
    assert r.status == 200 and r.body == b"recorded"
    [req] = recorder.request_list()
    assert req.header("transfer-encoding").lower() == "chunked"
    assert req.header("content-length") is None
    assert req.body == b"hello 0123456789"
    raw = recorder.all_bytes()
    assert b"ext=secret" not in raw and b"quoted" not in raw, "chunk extensions were forwarded"
    assert raw.endswith(b"0\r\n\r\n")


def test_chunked_request_body_reaches_echo_intact(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    parts = [b"a" * 1, b"b" * 1000, b"c" * 70000, b"d" * 3]
    with gh.conn() as c:
        c.send(request_bytes("PUT", "/up", headers=[("Transfer-Encoding", "chunked")])
               + chunked(*parts))
        j = c.read_response().json()
    data = b"".join(parts)
    assert j["body_length"] == len(data)
    assert j["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_chunked_response_is_relayed_chunked(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/gen", headers=[("x-echo-chunked", "1"),
                                                     ("x-echo-body-size", str(300000))]))
        r = c.read_response()
        assert r.status == 200 and r.chunked
        assert hashlib.sha256(r.body).hexdigest() == gen_sha256(300000)
        # The connection stays usable after a chunked response.
        c.send(request_bytes("GET", "/next"))
        assert c.read_response().json()["path"] == "/next"


def test_request_trailers_are_forwarded(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("POST", "/tr", headers=[("Transfer-Encoding", "chunked"),
                                                    ("Trailer", "x-digest")])
               + chunked(b"data", trailers=[("X-Digest", "abc123")]))
        j = c.read_response().json()
    assert j["body_length"] == 4
    assert ["x-digest", "abc123"] in j["trailers"]


def test_response_trailers_are_relayed(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/tr", headers=[("x-echo-trailer", "X-Checksum: deadbeef"),
                                                   ("TE", "trailers")]))
        r = c.read_response()
    assert r.status == 200 and r.chunked
    assert ("x-checksum", "deadbeef") in r.trailers


def _stream_upload(c, total):
    h = hashlib.sha256()
    for b in gen_blocks(total):
        c.send(b)
        h.update(b)
    return h.hexdigest()


@pytest.mark.slow
def test_large_upload_and_download_stream_with_bounded_memory(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn(timeout=60) as c:
        c.send(request_bytes("POST", "/upload", headers=[("Content-Length", str(BIG))]))
        digest = _stream_upload(c, BIG)
        j = c.read_response(timeout=60).json()
        assert j["body_length"] == BIG
        assert j["body_sha256"] == digest

        c.send(request_bytes("GET", "/download", headers=[("x-echo-body-size", str(BIG))]))
        head = c.read_until(b"\r\n\r\n", timeout=60)
        assert head.startswith(b"HTTP/1.1 200")
        assert f"content-length: {BIG}".encode() in head.lower()
        h = hashlib.sha256()
        h.update(c.buf)
        got = len(c.buf)
        c.buf = b""
        c.sock.settimeout(60)
        for _ in range(BIG):
            if got >= BIG:
                break
            b = c.sock.recv(min(1 << 20, BIG - got))
            assert b, f"connection closed after {got} of {BIG} bytes"
            h.update(b)
            got += len(b)
        assert got == BIG
        assert h.hexdigest() == gen_sha256(BIG)
    hwm_mib = gh.vm_hwm_kib() / 1024
    if is_sanitized_binary():
        pytest.skip(f"sanitizer build: RSS high-water mark {hwm_mib:.0f} MiB not comparable")
    assert hwm_mib < BIG / MiB / 2, f"gatehouse peak RSS {hwm_mib:.0f} MiB for a 64 MiB body"


@pytest.mark.slow
def test_large_chunked_upload_streams(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    total = 16 * MiB
    h = hashlib.sha256()
    with gh.conn(timeout=60) as c:
        c.send(request_bytes("POST", "/upload", headers=[("Transfer-Encoding", "chunked")]))
        for b in gen_blocks(total):
            c.send(b"%x\r\n%s\r\n" % (len(b), b))
            h.update(b)
        c.send(b"0\r\n\r\n")
        j = c.read_response(timeout=60).json()
    assert j["body_length"] == total and j["body_sha256"] == h.hexdigest()


def test_expect_continue_accepted_by_upstream(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    body = b"z" * 100000
    with gh.conn() as c:
        c.send(request_bytes("POST", "/exp", headers=[("Expect", "100-continue"),
                                                     ("Content-Length", str(len(body)))]))
        interim = c.read_response(skip_interim=False)
        assert interim.status == 100
        c.send(body)
        r = c.read_response(skip_interim=False)
        assert r.status == 200, "a second interim or an error instead of the final answer"
        j = r.json()
    assert j["body_length"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_expect_continue_with_silent_upstream_sends_body_anyway(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("POST", "/exp", headers=[("Expect", "100-continue"),
                                                     ("Content-Length", "5")]))
        assert c.read_response(skip_interim=False).status == 100
        c.send(b"hello")
        r = c.read_response()
    assert r.status == 200 and r.body == b"recorded"
    [req] = recorder.request_list()
    assert req.body == b"hello"


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: gh.test\r\n\r\n"


@pytest.mark.parametrize("status", [417, 401])
def test_expect_continue_refused_by_upstream_never_parses_leftover_body(gatehouse, echo, status):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    body = SMUGGLED + b"x" * 200
    with gh.conn() as c:
        c.send(request_bytes("POST", "/exp", headers=[("Expect", "100-continue"),
                                                     ("x-echo-expect", str(status)),
                                                     ("Content-Length", str(len(body)))]))
        r = c.read_response(skip_interim=False)
        assert r.status == status
        # A client may send the body anyway; it must never become a request.
        try:
            c.send(body)
        except OSError:
            pass
        rest = c.read_to_close()
        assert b"HTTP/1.1" not in rest, f"a second response followed: {rest[:200]!r}"
    paths = [q["path"] for q in echo.requests]
    assert "/smuggled" not in paths
    assert paths == ["/exp"]


def test_expect_continue_refused_with_body_already_sent_is_not_smuggled(gatehouse, recorder):
    # The upstream answers 401 to the head at once; the client had already sent its body.
    recorder.script.append(Reply(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 4\r\n\r\nnope",
                                 early=True))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    body = SMUGGLED + b"y" * 100
    with gh.conn() as c:
        c.send(request_bytes("POST", "/auth", headers=[("Expect", "100-continue"),
                                                      ("Content-Length", str(len(body)))]) + body)
        r = c.read_response()
        assert r.status == 401 and r.body == b"nope"
        c.send(request_bytes("GET", "/after"))
        r2 = c.read_response()
        assert r2.status == 200
    lines = [q.request_line for q in recorder.request_list()]
    assert not any("/smuggled" in ln for ln in lines), lines


def test_head_response_has_no_body_even_if_upstream_sends_chunked_headers(gatehouse, recorder):
    recorder.script.append(Reply(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                                 b"content-type: text/plain\r\n\r\n"))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("HEAD", "/h") + request_bytes("GET", "/g"))
        r = c.read_response("HEAD")
        assert r.status == 200
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"recorded"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_are_framed_without_body(gatehouse, recorder, status):
    # A broken upstream sends body framing on 204/304; the client must get neither framing nor
    # body bytes, and the connection must stay in sync.
    recorder.script.append(Reply(f"HTTP/1.1 {status} X\r\ncontent-length: 42\r\netag: \"v1\"\r\n"
                                 f"\r\n".encode()))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/nb") + request_bytes("GET", "/next"))
        r = c.read_response()
        assert r.status == status
        assert r.header("transfer-encoding") is None
        assert r.header("etag") == '"v1"'
        if status == 204:
            assert r.header("content-length") in (None, "0")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"recorded"


def test_204_from_echo_and_direct_response(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), routes=[
        {"name": "empty", "match": {"path_prefix": "/empty"},
         "direct_response": {"status": 204, "body": ""}},
        {"name": "up", "match": {"path_prefix": "/"}, "cluster": "echo"}]))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/x", headers=[("x-echo-status", "204")])
               + request_bytes("GET", "/empty")
               + request_bytes("GET", "/y"))
        a, b, d = (c.read_response() for _ in range(3))
    assert a.status == 204 and b.status == 204
    for r in (a, b):
        assert r.header("transfer-encoding") is None
        assert r.header("content-length") in (None, "0")
    assert d.json()["path"] == "/y"


def test_request_with_content_length_zero_and_empty_chunked(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("POST", "/cl0", headers=[("Content-Length", "0")])
               + request_bytes("POST", "/ch0", headers=[("Transfer-Encoding", "chunked")])
               + b"0\r\n\r\n")
        assert c.read_response().status == 200
        assert c.read_response().status == 200
    reqs = recorder.request_list()
    assert [r.request_line.split()[1] for r in reqs] == ["/cl0", "/ch0"]
    assert reqs[0].header("content-length") == "0"
    assert reqs[1].body == b""


def test_unread_body_of_local_reply_is_never_parsed_as_request(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), routes=[
        {"name": "local", "match": {"path_prefix": "/local"},
         "direct_response": {"status": 200, "body": "L"}},
        {"name": "up", "match": {"path_prefix": "/"}, "cluster": "echo"}]))
    body = SMUGGLED + b"z" * 50
    with gh.conn() as c:
        c.send(request_bytes("POST", "/local", body=body)
               + request_bytes("GET", "/next", headers=[("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200 and r.body == b"L"
        # Either the body was skipped and /next is answered, or the connection is closed.
        rest = c.read_to_close()
        if rest:
            assert rest.startswith(b"HTTP/1.1 200 "), rest[:200]
            assert b'"path": "/next"' in rest
            assert rest.count(b"HTTP/1.1 ") == 1, rest[:300]
    assert "/smuggled" not in [q["path"] for q in echo.requests]


def test_expect_continue_to_local_route_gets_final_answer_without_body(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), routes=[
        {"name": "local", "match": {"path_prefix": "/local"},
         "direct_response": {"status": 403, "body": "no"}},
        {"name": "up", "match": {"path_prefix": "/"}, "cluster": "echo"}]))
    body = SMUGGLED + b"w" * 30
    with gh.conn() as c:
        c.send(request_bytes("POST", "/local", headers=[("Expect", "100-continue"),
                                                       ("Content-Length", str(len(body)))]))
        r = c.read_response(skip_interim=False)
        assert r.status == 403 and r.body == b"no"
        try:
            c.send(body)
        except OSError:
            pass
        rest = c.read_to_close()
        assert b"HTTP/1.1" not in rest, rest[:200]
    assert echo.requests == []


FORBIDDEN_TRAILERS = [("Content-Length", "5"), ("Transfer-Encoding", "chunked"),
                      ("Host", "evil.test"), ("Connection", "close"), ("Keep-Alive", "x"),
                      ("TE", "trailers"), ("Trailer", "x-ok"), ("Upgrade", "h2c"),
                      ("Proxy-Connection", "close")]


def test_framing_routing_and_hop_by_hop_trailers_are_not_forwarded(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("POST", "/t", headers=[("Transfer-Encoding", "chunked")])
               + chunked(b"data", trailers=FORBIDDEN_TRAILERS + [("X-Ok", "1")]))
        assert c.read_response().status == 200
    raw = recorder.all_bytes()
    trailer_section = raw[raw.index(b"\r\n0\r\n") + 5:].lower()
    assert b"x-ok: 1" in trailer_section
    for name, _ in FORBIDDEN_TRAILERS:
        assert name.lower().encode() + b":" not in trailer_section, \
            f"trailer {name} forwarded upstream: {trailer_section!r}"


def test_framing_and_hop_by_hop_response_trailers_are_not_relayed(gatehouse, recorder):
    trailers = b"".join(f"{k}: {v}\r\n".encode() for k, v in FORBIDDEN_TRAILERS)
    recorder.script.append(Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"2\r\nok\r\n0\r\n" + trailers + b"X-Ok: 1\r\n\r\n"))
    gh = gatehouse(simple_config(cluster("rec", recorder)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/t"))
        r = c.read_response()
    assert r.body == b"ok"
    assert r.trailers == [("x-ok", "1")]
