"""Policy `compress`: gzip, brotli and zstd response bodies negotiated from Accept-Encoding,
decoded here by Python's own decoders (Debian's python3-brotli and python3-zstandard), over
HTTP/1.1 and HTTP/2; the headers it adds or leaves alone; streaming chunk by chunk; and gzip
request bodies decoded for the upstream, with a bound against decompression bombs."""
import gzip
import hashlib
import json
import shutil
import subprocess
import threading
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler

import brotli
import httpx
import pytest
import zstandard

from support import IO_TIMEOUT, BackgroundHttpServer, simple_config, wait_until


def json_body(size):
    """A JSON-like body of exactly `size` bytes (repetitive, as API answers are)."""
    rows = []
    i = 0
    while sum(len(r) + 1 for r in rows) < size:
        rows.append('{"id":%d,"name":"user%d","active":true}' % (i, i * 7919 % 1000))
        i += 1
    text = ("[" + ",".join(rows) + "]").encode()
    return text[:size]


class Upstream(BackgroundHttpServer):
    """Answers GET /data?size=N&type=T&etag=E&cc=C&vary=V&encoding=X&chunked=1 with a JSON-like
    body; GET /stream with one chunk, then (after `release` is set) a second; POST /upload with
    JSON about the body it received. Remembers every request it gets."""

    def __init__(self):
        self.release = threading.Event()
        self.uploads = []
        self.paths = []
        super().__init__(Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802 - the stdlib's name
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        self.server.paths.append(self.path)
        if url.path == "/stream":
            return self.stream()
        body = json_body(int(q.get("size", "4000")))
        if q.get("encoding") == "gzip":
            body = gzip.compress(body)
        status = int(q.get("status", "200"))
        self.send_response(status)
        self.send_header("content-type", q.get("type", "application/json"))
        for name, key in (("etag", "etag"), ("cache-control", "cc"), ("vary", "vary"),
                          ("content-encoding", "encoding")):
            if key in q:
                self.send_header(name, q[key])
        no_body = self.command == "HEAD" or status in (204, 304)
        if q.get("chunked"):
            self.send_header("transfer-encoding", "chunked")
        elif status != 204:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if no_body:
            return
        if q.get("chunked"):
            half = len(body) // 2
            for piece in (body[:half], body[half:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def stream(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for i, gate in enumerate((None, self.server.release)):
            if gate is not None and not gate.wait(IO_TIMEOUT * 2):
                return
            ev = b"id: %d\ndata: %s\n\n" % (i, b"x" * 300)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.uploads.append((dict((k.lower(), v) for k, v in self.headers.items()), body))
        out = json.dumps({"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}).encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")  # short: never coded (min_size)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.release.set()
    u.stop()


def start(gatehouse, upstream, **policy):
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up",
             "policies": [{"name": "compress", "config": policy}]}
    return gatehouse(simple_config({"name": "up", "endpoints": [upstream.endpoint]},
                                   routes=[route]))


DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress,
            "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b)}


def raw_get(client, url, accept, method="GET"):
    """The response with its body exactly as sent (httpx would decode gzip itself)."""
    headers = {"accept-encoding": accept} if accept is not None else {}
    with client.stream(method, url, headers=headers) as r:
        return r, b"".join(r.iter_raw())


@pytest.fixture(params=["http1", "http2"])
def client(request):
    http2 = request.param == "http2"
    with httpx.Client(http1=not http2, http2=http2, timeout=IO_TIMEOUT * 2) as c:
        yield c


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_each_algorithm_round_trips(gatehouse, upstream, client, coding):
    gh = start(gatehouse, upstream)
    r, raw = raw_get(client, f"{gh.url}/data?size=20000&etag=%22v1%22", coding)
    assert r.status_code == 200
    assert r.headers["content-encoding"] == coding
    assert "content-length" not in r.headers  # the coded length is not known up front
    assert r.headers["vary"] == "Accept-Encoding"
    assert r.headers["etag"] == 'W/"v1"'
    assert len(raw) < 20000 // 4
    assert DECODERS[coding](raw) == json_body(20000)
    if r.http_version == "HTTP/1.1":
        assert r.headers["transfer-encoding"] == "chunked"


@pytest.mark.parametrize("accept,want", [
    ("gzip, deflate, br, zstd", "br"),           # equal weights: the server's order
    ("br;q=0.5, gzip;q=0.9, zstd;q=0.1", "gzip"),
    ("br;q=0, *", "zstd"),
    ("*;q=0.5, identity", None),                 # plain weighs more
    ("identity", None),
    ("deflate", None),
    ("", None),
])
def test_q_value_negotiation(gatehouse, upstream, accept, want):
    gh = start(gatehouse, upstream)
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        r, raw = raw_get(c, f"{gh.url}/data", accept)
    assert r.headers.get("content-encoding") == want
    assert r.headers["vary"] == "Accept-Encoding"
    body = DECODERS[want](raw) if want else raw
    assert body == json_body(4000)
    if want is None:  # left plain: relayed as it came, with its length
        assert r.headers["content-length"] == "4000"


def test_server_order_from_config(gatehouse, upstream):
    gh = start(gatehouse, upstream, algorithms=["gzip", "zstd"], levels={"gzip": 1})
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        r, raw = raw_get(c, f"{gh.url}/data", "br, zstd, gzip")
        assert r.headers["content-encoding"] == "gzip"
        assert gzip.decompress(raw) == json_body(4000)
        r, _ = raw_get(c, f"{gh.url}/data", "br")  # not enabled
        assert "content-encoding" not in r.headers


def test_already_coded_response_is_not_coded_twice(gatehouse, upstream, client):
    gh = start(gatehouse, upstream)
    r, raw = raw_get(client, f"{gh.url}/data?encoding=gzip&vary=Origin", "br, gzip")
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Origin"  # untouched: the upstream chose the coding
    assert gzip.decompress(raw) == json_body(4000)


def test_vary_merges_and_weak_etag_stays(gatehouse, upstream):
    gh = start(gatehouse, upstream)
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        r, _ = raw_get(c, f"{gh.url}/data?vary=Origin&etag=W/%22x%22", "gzip")
        assert r.headers.get_list("vary") == ["Origin", "Accept-Encoding"]
        assert r.headers["etag"] == 'W/"x"'
        r, _ = raw_get(c, f"{gh.url}/data?vary=Origin,%20Accept-Encoding", "gzip")
        assert r.headers.get_list("vary") == ["Origin, Accept-Encoding"]


@pytest.mark.parametrize("query", [
    "size=100",                          # known length under min_size
    "type=image/png",                    # not a listed type
    "cc=public,%20no-transform",         # the origin forbids transformations
    "status=204",
])
def test_left_plain(gatehouse, upstream, client, query):
    gh = start(gatehouse, upstream, min_size=256)
    r, raw = raw_get(client, f"{gh.url}/data?{query}", "gzip, br, zstd")
    assert "content-encoding" not in r.headers
    if "status=204" not in query:
        size = 100 if "size=100" in query else 4000
        assert raw == json_body(size)


def test_unknown_length_is_coded_despite_min_size(gatehouse, upstream):
    gh = start(gatehouse, upstream, min_size="64KiB")
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        r, raw = raw_get(c, f"{gh.url}/data?chunked=1", "gzip")
        assert r.headers["content-encoding"] == "gzip"
        assert gzip.decompress(raw) == json_body(4000)
        r, raw = raw_get(c, f"{gh.url}/data", "gzip")  # known 4000 < 64 KiB
        assert "content-encoding" not in r.headers and raw == json_body(4000)


def test_head_and_304_are_not_coded(gatehouse, upstream, client):
    gh = start(gatehouse, upstream)
    r, raw = raw_get(client, f"{gh.url}/data", "gzip", method="HEAD")
    assert r.status_code == 200 and raw == b""
    assert "content-encoding" not in r.headers
    assert r.headers["vary"] == "Accept-Encoding"
    r, raw = raw_get(client, f"{gh.url}/data?status=304&etag=%22v1%22", "gzip")
    assert r.status_code == 304 and raw == b""
    assert "content-encoding" not in r.headers
    assert r.headers["etag"] == '"v1"'


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_first_chunk_arrives_before_the_upstream_finishes(gatehouse, upstream, client, coding):
    gh = start(gatehouse, upstream)
    decode = {"gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS).decompress,
              "br": lambda: brotli.Decompressor().process,
              "zstd": lambda: zstandard.ZstdDecompressor().decompressobj().decompress}[coding]()
    plain = b""
    with client.stream("GET", f"{gh.url}/stream", headers={"accept-encoding": coding}) as r:
        assert r.headers["content-encoding"] == coding
        chunks = r.iter_raw()
        # The upstream holds its second event until `release`: whatever decodes now came
        # through while it was still sending.
        while b"id: 0\n" not in plain or not plain.endswith(b"\n\n"):
            plain += decode(next(chunks))
        assert plain == b"id: 0\ndata: " + b"x" * 300 + b"\n\n"
        assert not upstream.release.is_set()
        upstream.release.set()
        for c in chunks:
            plain += decode(c)
    assert plain.endswith(b"id: 1\ndata: " + b"x" * 300 + b"\n\n")


def test_curl_compressed(gatehouse, upstream):
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    gh = start(gatehouse, upstream)
    for flag in (["--compressed"], ["--compressed", "--http2-prior-knowledge"]):
        out = subprocess.run(["curl", "-sS", "--max-time", str(IO_TIMEOUT), *flag,
                              "-D", "-", f"{gh.url}/data?size=10000"],
                             capture_output=True, check=True, timeout=IO_TIMEOUT * 2)
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        assert b"content-encoding: " in head.lower()
        assert body == json_body(10000)


def test_local_replies_are_not_coded(gatehouse, upstream):
    """A reply the gateway makes itself skips the body filters: it must not claim a coding."""
    body = "plain text " * 200
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up",
             "policies": [{"name": "compress", "config": {}},
                          {"name": "direct_response", "config": {"body": body}}]}
    gh = gatehouse(simple_config({"name": "up", "endpoints": [upstream.endpoint]},
                                 routes=[route]))
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        r, raw = raw_get(c, f"{gh.url}/local", "gzip, br")
    assert r.status_code == 200 and raw == body.encode()
    assert "content-encoding" not in r.headers
    assert upstream.paths == []


def post(gh, body, headers):
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        return c.post(f"{gh.url}/upload", content=body, headers=headers)


def test_gzip_request_body_is_decoded_for_the_upstream(gatehouse, upstream):
    gh = start(gatehouse, upstream, request_decompression={"max_size": "1MiB"})
    plain = json_body(100000)
    r = post(gh, gzip.compress(plain), {"content-encoding": "gzip",
                                        "content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"length": len(plain), "sha256": hashlib.sha256(plain).hexdigest()}
    headers, body = upstream.uploads[-1]
    assert body == plain
    assert "content-encoding" not in headers
    assert headers["content-length"] == str(len(plain))
    r = post(gh, zlib.compress(plain), {"content-encoding": "deflate"})
    assert r.status_code == 200 and upstream.uploads[-1][1] == plain


ENCODERS = {"br": brotli.compress,
            "zstd": lambda b: zstandard.ZstdCompressor().compress(b)}


@pytest.mark.parametrize("coding", ["br", "zstd"])
def test_brotli_and_zstd_request_bodies_are_decoded(gatehouse, upstream, coding):
    gh = start(gatehouse, upstream, request_decompression={"max_size": "1MiB"})
    plain = json_body(100000)
    r = post(gh, ENCODERS[coding](plain), {"content-encoding": coding})
    assert r.status_code == 200, r.text
    headers, body = upstream.uploads[-1]
    assert body == plain and "content-encoding" not in headers
    bomb = ENCODERS[coding](bytes(8 << 20))
    assert len(bomb) < 64 * 1024
    assert post(gh, bomb, {"content-encoding": coding}).status_code == 413
    assert post(gh, ENCODERS[coding](b"ok") + b"junk",
                {"content-encoding": coding}).status_code == 400
    assert len(upstream.uploads) == 1


def test_decompression_bomb_is_refused(gatehouse, upstream):
    gh = start(gatehouse, upstream, request_decompression={"max_size": "1MiB"})
    bomb = gzip.compress(bytes(10 << 20))
    assert len(bomb) < 16 * 1024
    r = post(gh, bomb, {"content-encoding": "gzip"})
    assert r.status_code == 413
    r = post(gh, b"\x1f\x8b not really gzip", {"content-encoding": "gzip"})
    assert r.status_code == 400
    r = post(gh, gzip.compress(b"ok") + b"\x00", {"content-encoding": "gzip"})
    assert r.status_code == 400
    assert upstream.uploads == []  # none of them reached the upstream
    m = gh.metrics()
    assert m.value("gatehouse_compress_request_bodies_refused_total") == 3


def test_request_bodies_pass_through_when_decoding_is_off(gatehouse, upstream):
    gh = start(gatehouse, upstream)
    coded = gzip.compress(b"hello")
    r = post(gh, coded, {"content-encoding": "gzip"})
    assert r.status_code == 200
    headers, body = upstream.uploads[-1]
    assert body == coded and headers["content-encoding"] == "gzip"


def test_metrics_count_bytes_per_algorithm(gatehouse, upstream):
    gh = start(gatehouse, upstream)
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        _, raw = raw_get(c, f"{gh.url}/data?size=50000", "zstd")

    def counted():
        m = gh.metrics()
        return (m.value("gatehouse_compress_bytes_in_total", algorithm="zstd") == 50000 and m)
    m = wait_until(counted, message="zstd byte counters")
    assert m.value("gatehouse_compress_bytes_out_total", algorithm="zstd") == len(raw)
    assert m.value("gatehouse_compress_responses_total", algorithm="zstd") == 1
    assert m.value("gatehouse_compress_responses_total", algorithm="gzip") == 0
