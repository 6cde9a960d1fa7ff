"""Malformed and ambiguous requests, sent on raw sockets. Each case checks the status AND that
the recording upstream received nothing for it; a valid control request afterwards proves the
upstream path worked, so "nothing arrived" is not an accident of a broken setup."""
import subprocess

import pytest

from support import Gatehouse, Reply, cluster, request_bytes, simple_config
from support.common import GATEHOUSE_BIN, free_port

LIMITS = {"max_request_line": 1024, "max_header_bytes": 4096, "max_headers": 20,
          "max_body_bytes": 1000}


@pytest.fixture
def gh(gatehouse, recorder):
    g = gatehouse(simple_config(cluster("rec", recorder), limits=LIMITS))
    g.recorder = recorder
    return g


def control(gh):
    """A valid request on a fresh connection must reach the upstream."""
    with gh.conn() as c:
        c.send(request_bytes("GET", "/control"))
        r = c.read_response()
    assert r.status == 200 and r.body == b"recorded"


def assert_rejected(gh, raw: bytes, status: int):
    bad0 = gh.metrics().value("gatehouse_bad_requests_total")
    with gh.conn() as c:
        try:
            c.send(raw)
        except OSError:
            pass  # the gateway may close while we are still sending
        r = c.read_response()
        assert r.status == status, f"expected {status}, got {r.status} {r.body[:200]!r}"
        assert r.header("content-type", "").startswith("application/json")
        assert r.json()["status"] == status
        # After a framing error nothing else on the connection can be trusted.
        assert (r.header("connection") or "").lower() == "close"
        rest = c.read_to_close()
        assert b"HTTP/1." not in rest, f"second response after a rejected request: {rest[:200]!r}"
    control(gh)
    reqs = gh.recorder.request_list()
    assert [q.request_line for q in reqs] == ["GET /control HTTP/1.1"], \
        f"the upstream received more than the control request: {gh.recorder.all_bytes()[:500]!r}"
    assert gh.recorder.all_bytes().startswith(b"GET /control "), gh.recorder.all_bytes()[:300]
    assert gh.metrics().value("gatehouse_bad_requests_total") > bad0 or status == 413


H = "Host: gh.test\r\n"

CASES = {
    # request smuggling: ambiguous framing
    "cl_and_te": (f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "0\r\n\r\n", 400),
    "te_and_cl": (f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                  "0\r\n\r\n", 400),
    "two_different_content_lengths": (f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\n"
                                      "Content-Length: 6\r\n\r\nhello!", 400),
    "content_length_list_conflict": (f"POST / HTTP/1.1\r\n{H}Content-Length: 5, 6\r\n\r\nhello!",
                                     400),
    "content_length_plus_sign": (f"POST / HTTP/1.1\r\n{H}Content-Length: +5\r\n\r\nhello", 400),
    "content_length_negative": (f"POST / HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n", 400),
    "content_length_hex": (f"POST / HTTP/1.1\r\n{H}Content-Length: 0x5\r\n\r\nhello", 400),
    "content_length_overflow": (f"POST / HTTP/1.1\r\n{H}Content-Length: 99999999999999999999999"
                                "\r\n\r\n", 400),
    "te_chunked_twice": (f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te_chunked_not_last": (f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked, identity\r\n\r\n"
                            "0\r\n\r\n", 400),
    "te_unknown_coding": (f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: gzip, chunked\r\n\r\n"
                          "0\r\n\r\n", 501),
    "te_lookalike": (f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    "te_in_http10": ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te_space_before_colon": (f"POST / HTTP/1.1\r\n{H}Transfer-Encoding : chunked\r\n\r\n"
                              "0\r\n\r\n", 400),
    # line endings and folding
    "bare_lf_everywhere": ("GET / HTTP/1.1\nHost: gh.test\n\n", 400),
    "bare_lf_in_headers": (f"GET / HTTP/1.1\r\n{H}X-A: 1\nX-B: 2\r\n\r\n", 400),
    "bare_cr_in_headers": (f"GET / HTTP/1.1\r\n{H}X-A: 1\rX-B: 2\r\n\r\n", 400),
    "bare_cr_in_request_line": (f"GET / HTTP/1.1\r{H}\r\n", 400),
    "obs_fold": (f"GET / HTTP/1.1\r\n{H}X-Long: first\r\n  folded\r\n\r\n", 400),
    "leading_whitespace_first_header": ("GET / HTTP/1.1\r\n Host: gh.test\r\n\r\n", 400),
    # header names
    "space_before_colon": (f"GET / HTTP/1.1\r\n{H}X-Foo : bar\r\n\r\n", 400),
    "space_in_name": (f"GET / HTTP/1.1\r\n{H}X Foo: bar\r\n\r\n", 400),
    "paren_in_name": (f"GET / HTTP/1.1\r\n{H}X(Foo): bar\r\n\r\n", 400),
    "at_in_name": (f"GET / HTTP/1.1\r\n{H}X@Foo: bar\r\n\r\n", 400),
    "quote_in_name": (f"GET / HTTP/1.1\r\n{H}X\"Foo: bar\r\n\r\n", 400),
    "empty_name": (f"GET / HTTP/1.1\r\n{H}: bar\r\n\r\n", 400),
    "no_colon": (f"GET / HTTP/1.1\r\n{H}JustAName\r\n\r\n", 400),
    # NUL and control bytes
    "nul_in_header_value": (f"GET / HTTP/1.1\r\n{H}X-Nul: a\x00b\r\n\r\n", 400),
    "nul_in_target": (f"GET /a\x00b HTTP/1.1\r\n{H}\r\n", 400),
    "nul_in_header_name": (f"GET / HTTP/1.1\r\n{H}X-\x00: b\r\n\r\n", 400),
    "del_in_header_value": (f"GET / HTTP/1.1\r\n{H}X-Del: a\x7fb\r\n\r\n", 400),
    # Host
    "two_host_headers": ("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", 400),
    "missing_host_http11": ("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400),
    "invalid_host": ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    "host_with_userinfo": ("GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n", 400),
    "absolute_form_host_mismatch": ("GET http://a.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n", 400),
    # request line
    "bad_method_token": (f"G(T / HTTP/1.1\r\n{H}\r\n", 400),
    "two_spaces": (f"GET  / HTTP/1.1\r\n{H}\r\n", 400),
    "lowercase_version": (f"GET / http/1.1\r\n{H}\r\n", 400),
    "http2_version": (f"GET / HTTP/2.0\r\n{H}\r\n", 505),
    "space_in_target": (f"GET /a b HTTP/1.1\r\n{H}\r\n", 400),
    "request_line_too_long": ("GET /" + "a" * 2000 + f" HTTP/1.1\r\n{H}\r\n", 414),
    # header limits from config
    "too_many_headers": (f"GET / HTTP/1.1\r\n{H}"
                         + "".join(f"X-H{i}: v\r\n" for i in range(25)) + "\r\n", 431),
    "header_section_too_large": (f"GET / HTTP/1.1\r\n{H}X-Big: {'b' * 5000}\r\n\r\n", 431),
    "header_bytes_over_limit_in_many_lines": (
        f"GET / HTTP/1.1\r\n{H}" + "".join(f"X-M{i}: {'m' * 300}\r\n" for i in range(15))
        + "\r\n", 431),
    # body limit
    "body_over_max_body_bytes": (f"POST / HTTP/1.1\r\n{H}Content-Length: 5000\r\n\r\n"
                                 + "x" * 5000, 413),
}


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_request_is_rejected_and_never_reaches_upstream(gh, name):
    raw, status = CASES[name]
    assert_rejected(gh, raw.encode("latin-1"), status)


CHUNK_CASES = {
    "invalid_chunk_size": "zz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_with_space_inside": "1 0\r\n0123456789abcdef\r\n0\r\n\r\n",
    "chunk_data_longer_than_size": "3\r\nhello\r\n0\r\n\r\n",
    "chunk_size_bare_lf": "5\nhello\r\n0\r\n\r\n",
    "chunk_size_trailing_whitespace": "3 \r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(CHUNK_CASES))
def test_bad_chunked_body_is_400_and_no_complete_request_reaches_upstream(gh, name):
    """The head of a chunked request may be streamed before the body is seen; the upstream may
    then see a started request, but never a complete one, and that connection is not reused."""
    raw = (f"POST /chunky HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n"
           + CHUNK_CASES[name]).encode()
    with gh.conn() as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 400
        assert c.wait_closed()
    control(gh)
    reqs = gh.recorder.request_list()
    assert [q.request_line for q in reqs] == ["GET /control HTTP/1.1"], \
        f"a request with a bad chunked body was completed upstream: {gh.recorder.all_bytes()!r}"
    # The control request did not go to the connection that carried the aborted body.
    assert reqs[0].conn == gh.recorder.connection_count() - 1


@pytest.mark.parametrize("name", ["invalid_chunk_size", "chunk_size_trailing_whitespace"])
def test_bad_first_chunk_never_reaches_upstream_at_all(gh, name):
    raw = (f"POST /chunky HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n"
           + CHUNK_CASES[name]).encode()
    assert_rejected(gh, raw, 400)


def test_chunked_body_over_max_body_bytes_is_413(gh):
    raw = (f"POST /big HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n".encode()
           + b"800\r\n" + b"c" * 0x800 + b"\r\n0\r\n\r\n")
    with gh.conn() as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 413
    control(gh)
    assert [q.request_line for q in gh.recorder.request_list()] == ["GET /control HTTP/1.1"]


@pytest.mark.parametrize("size_line", ["111111113", "fffffffffffffff0", "3e9",
                                       "fffffffffffffffffffff"])
def test_chunk_size_over_max_body_bytes_is_refused_at_once(gh, size_line):
    """The size alone says the body is too large: 413 before any data is sent or awaited, and
    nothing reaches the upstream (max_body_bytes is 1000 here; 0x3e9 is 1001). A size no 64-bit
    number holds is refused the same way, on the digit that passes the limit."""
    head = f"POST /huge HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n".encode()
    assert_rejected(gh, head + size_line.encode() + b"\r\nabc", 413)


def test_body_over_limit_leftover_is_never_parsed_as_request(gh):
    smuggled = f"GET /smuggled HTTP/1.1\r\n{H}\r\n"
    body = smuggled + "p" * (2000 - len(smuggled))
    raw = f"POST /up HTTP/1.1\r\n{H}Content-Length: {len(body)}\r\n\r\n{body}"
    with gh.conn() as c:
        c.send(raw.encode())
        r = c.read_response()
        assert r.status == 413
        rest = c.read_to_close()
        assert b"HTTP/1." not in rest
    control(gh)
    assert b"/smuggled" not in gh.recorder.all_bytes()


def test_h2c_upgrade_is_never_forwarded_as_upgrade(gh):
    raw = (f"GET /h2 HTTP/1.1\r\n{H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
           "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
    with gh.conn() as c:
        c.send(raw.encode())
        r = c.read_response()
        assert r.status == 200 and r.body == b"recorded"
        # Still plain HTTP/1.1 on this connection.
        c.send(request_bytes("GET", "/after"))
        assert c.read_response().status == 200
    reqs = gh.recorder.request_list()
    assert reqs[0].request_line == "GET /h2 HTTP/1.1"
    head = reqs[0].head.lower()
    assert b"upgrade" not in head, head
    assert b"http2-settings" not in head, head
    assert b"h2c" not in head, head


def test_upstream_101_without_upgrade_request_is_502(gatehouse, recorder_factory):
    rec = recorder_factory()
    rec.script.append(Reply(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                            b"Upgrade: h2c\r\n\r\n"))
    g = gatehouse(simple_config(cluster("rec", rec)))
    with g.conn() as c:
        c.send(request_bytes("GET", "/x", headers=[("Connection", "Upgrade, HTTP2-Settings"),
                                                   ("Upgrade", "h2c"),
                                                   ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]))
        r = c.read_response(skip_interim=False)
    assert r.status == 502


def test_body_exactly_at_max_body_bytes_is_accepted(gh):
    body = b"e" * LIMITS["max_body_bytes"]
    with gh.conn() as c:
        c.send(request_bytes("POST", "/edge", body=body))
        assert c.read_response().status == 200
        c.send(request_bytes("POST", "/edge-chunked", headers=[("Transfer-Encoding", "chunked")])
               + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        assert c.read_response().status == 200
    reqs = gh.recorder.request_list()
    assert [len(q.body) for q in reqs] == [len(body), len(body)]


def test_headers_exactly_at_max_headers_are_accepted(gh):
    headers = [(f"X-H{i}", "v") for i in range(LIMITS["max_headers"] - 1)]  # + Host
    with gh.conn() as c:
        c.send(request_bytes("GET", "/many", headers=headers))
        assert c.read_response().status == 200


@pytest.mark.parametrize("name", ["Content_Length", "transfer_encoding", "CONTENT_length"])
def test_framing_header_spelled_with_underscore_is_400(gh, name):
    """A CGI/WSGI/PHP back-end maps '_' and '-' to one variable: Content_Length would become
    its Content-Length."""
    value = "chunked" if "encoding" in name else "5"
    raw = f"POST /cgi HTTP/1.1\r\n{H}Content-Length: 5\r\n{name}: {value}\r\n\r\nhello"
    assert_rejected(gh, raw.encode(), 400)


def test_other_underscore_headers_are_forwarded_by_default(gh):
    with gh.conn() as c:
        c.send(request_bytes("GET", "/u", headers=[("X_Custom", "a"), ("X-Dash", "b")]))
        assert c.read_response().status == 200
    (req,) = gh.recorder.request_list()
    assert req.header("x_custom") == "a" and req.header("x-dash") == "b"


def underscore_config(recorder, mode):
    return simple_config(cluster("rec", recorder), limits=LIMITS, listeners=[
        {"name": "main", "address": "127.0.0.1", "port": "@main",
         "underscores_in_headers": mode}])


def test_listener_can_drop_every_underscore_header(gatehouse, recorder):
    gh = gatehouse(underscore_config(recorder, "drop"))
    with gh.conn() as c:
        c.send(f"POST /d HTTP/1.1\r\n{H}Content-Length: 5\r\nContent_Length: 99\r\n"
               "X_Custom: a\r\nX-Dash: b\r\n\r\nhello".encode())
        assert c.read_response().status == 200
    (req,) = recorder.request_list()
    assert req.header("content_length") is None and req.header("x_custom") is None
    assert req.header("x-dash") == "b" and req.body == b"hello"


def test_listener_can_reject_every_underscore_header(gatehouse, recorder):
    gh = gatehouse(underscore_config(recorder, "reject"))
    gh.recorder = recorder
    assert_rejected(gh, request_bytes("GET", "/r", headers=[("X_Custom", "a")]), 400)


def test_unknown_underscore_mode_fails_validation(tmp_path, recorder):
    g = Gatehouse(tmp_path, underscore_config(recorder, "allow"), name="bad")
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    r = subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert "underscores_in_headers" in r.stderr and "reject_framing" in r.stderr, r.stderr
