"""Policy `transform` (issue 14): request edits (headers, query, path from route parameters,
method, JSON body rules), response edits (status mapping, headers from the body, JSON body
rules, ETag, Content-Length), chained transforms, and the error cases: a bad template at load
(`gatehouse validate` names file:line), bodies over max_body_size (413 / 502), non-JSON bodies
(415 / 502 or passed through), coded response bodies passed through untouched."""
import gzip
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from support import IO_TIMEOUT, simple_config
from support.common import GATEHOUSE_BIN


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def _handle(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        srv = self.server
        seen = {"method": self.command, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace")}
        with srv.lock:
            srv.seen.append(seen)
        reply = srv.replies.get(self.path.split("?")[0])
        if reply is None:
            status, headers, out = 200, {"content-type": "application/json"}, json.dumps(seen).encode()
        else:
            status, headers, out = reply
        chunked = headers.get("x-test-chunked") == "1"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        no_body = self.command == "HEAD" or status in (204, 304)
        if chunked and not no_body:
            self.send_header("transfer-encoding", "chunked")
        elif not no_body:
            self.send_header("content-length", str(len(out)))
        self.end_headers()
        if no_body:
            return
        if chunked:
            half = len(out) // 2
            for part in (out[:half], out[half:]):
                if part:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class JsonUpstream(ThreadingHTTPServer):
    """Echoes each request as JSON (its body as text), or answers a canned reply by path."""
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen, self.replies, self.lock = [], {}, threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.server_address[1]}"

    def last(self):
        with self.lock:
            return self.seen[-1]

    def count(self):
        with self.lock:
            return len(self.seen)


@pytest.fixture
def upstream():
    s = JsonUpstream()
    yield s
    s.shutdown()
    s.server_close()


def route(match, *transforms, name="api"):
    return {"name": name, "match": match, "cluster": "up",
            "policies": [{"name": "transform", "config": t} for t in transforms]}


def start(gatehouse, upstream, *routes):
    return gatehouse(simple_config({"name": "up", "endpoints": [upstream.endpoint]},
                                   routes=list(routes)))


def client(g):
    return httpx.Client(base_url=g.url, timeout=IO_TIMEOUT)


def test_headers_query_path_and_method(gatehouse, upstream):
    g = start(gatehouse, upstream, route({"path_template": "/users/{id}"}, {"request": {
        "method": "POST",
        "path": "/v2/accounts/{{ request.params.id }}",
        "headers": {"remove": ["x-debug"], "rename": {"x-old": "x-new"},
                    "set": {"x-user-id": "{{ request.params.id }}",
                            "x-orig": "{{ request.method }} {{ request.path }}",
                            "x-lang": "{{ request.query.lang | default \"en\" | upper }}"},
                    "add": {"x-via": "gatehouse"}},
        "query": {"remove": ["token"], "rename": {"p": "page"},
                  "set": {"route": "{{ route.name }}"},
                  "add": {"ip": "{{ request.client_ip }}"}}}}))
    with client(g) as c:
        r = c.get("/users/42?p=3&token=secret&keep=1",
                  headers={"x-debug": "1", "x-old": "moved"})
        assert r.status_code == 200, r.text
        seen = upstream.last()
        assert seen["method"] == "POST"
        assert seen["path"] == "/v2/accounts/42?page=3&keep=1&route=api&ip=127.0.0.1"
        h = seen["headers"]
        assert "x-debug" not in h and "x-old" not in h
        assert h["x-new"] == "moved"
        assert h["x-user-id"] == "42"
        assert h["x-orig"] == "GET /users/42"
        assert h["x-lang"] == "EN"
        assert h["x-via"] == "gatehouse"
        # The default gives way to a value that is there.
        c.get("/users/7?lang=fr")
        assert upstream.last()["headers"]["x-lang"] == "FR"


REQUEST_BODY_RULES = {"request": {"body": [
    {"set": "/meta/source", "value": "{{ request.header.x-tenant }}"},
    {"add": "/meta/version", "value": 2},
    {"add": "/name", "value": "kept-if-present"},
    {"remove": "/password"},
    {"rename": "/userName", "to": "user_name"},
    {"move": "/tmp", "to": "/meta/moved"},
    {"set": "/id", "value_json": "{{ request.params.id }}"},
    {"map": "/items", "rules": [{"remove": "/secret"}, {"set": "/checked", "value": True}]},
    {"wrap": "data"},
]}}


def test_request_json_body_rules(gatehouse, upstream):
    g = start(gatehouse, upstream, route({"path_template": "/things/{id}"}, REQUEST_BODY_RULES))
    sent = {"name": "n", "password": "p", "userName": "u", "tmp": [1, 2],
            "items": [{"secret": 1, "a": 1}, {"a": 2}]}
    with client(g) as c:
        r = c.post("/things/9", json=sent, headers={"x-tenant": "acme"})
        assert r.status_code == 200, r.text
        seen = upstream.last()
        got = json.loads(seen["body"])
        assert got == {"data": {"name": "n", "user_name": "u", "id": 9,
                                "meta": {"source": "acme", "version": 2, "moved": [1, 2]},
                                "items": [{"a": 1, "checked": True}, {"a": 2, "checked": True}]}}
        assert int(seen["headers"]["content-length"]) == len(seen["body"].encode())
        # A chunked request body is read whole and forwarded with its new length.
        body = json.dumps(sent).encode()
        r = c.post("/things/1", content=iter([body[:10], body[10:]]),
                   headers={"content-type": "application/json", "x-tenant": "t2"})
        assert r.status_code == 200, r.text
        seen = upstream.last()
        assert json.loads(seen["body"])["data"]["meta"]["source"] == "t2"
        assert "transfer-encoding" not in seen["headers"]
        assert int(seen["headers"]["content-length"]) == len(seen["body"].encode())


@pytest.mark.parametrize("chunked", ["0", "1"])
def test_response_body_headers_and_etag(gatehouse, upstream, chunked):
    upstream.replies["/orders"] = (200, {"content-type": "application/json", "etag": '"abc"',
                                         "x-test-chunked": chunked},
                                   json.dumps({"data": {"orders": [{"id": 1, "cost": 5,
                                                                    "internal": "x"}]},
                                               "total": 1}).encode())
    g = start(gatehouse, upstream, route({"path_prefix": "/"}, {"response": {
        "headers": {"set": {"x-total": "{{ response.body./total }}",
                            "x-status": "{{ response.status }}"},
                    "remove": ["x-test-chunked"]},
        "body": [{"unwrap": "/data"},
                 {"map": "/orders", "rules": [{"remove": "/internal"},
                                               {"rename": "/cost", "to": "price"}]}]}}))
    with client(g) as c:
        r = c.get("/orders")
        assert r.status_code == 200, r.text
        assert r.json() == {"orders": [{"id": 1, "price": 5}]}
        assert r.headers["content-length"] == str(len(r.content))
        assert "transfer-encoding" not in r.headers
        assert r.headers["etag"] == 'W/"abc"'
        assert r.headers["x-total"] == "1"
        assert r.headers["x-status"] == "200"
        assert "x-test-chunked" not in r.headers
        # The connection is still good for the next request.
        assert c.get("/orders").json() == {"orders": [{"id": 1, "price": 5}]}


def test_etag_drop(gatehouse, upstream):
    upstream.replies["/e"] = (200, {"content-type": "application/json", "etag": '"v"'},
                              b'{"a": 1, "b": 2}')
    g = start(gatehouse, upstream, route({"path_prefix": "/"}, {
        "etag": "drop", "response": {"body": [{"remove": "/b"}]}}))
    r = httpx.get(g.url + "/e", timeout=IO_TIMEOUT)
    assert r.json() == {"a": 1}
    assert "etag" not in r.headers


def test_status_mapping(gatehouse, upstream):
    upstream.replies["/missing"] = (404, {"content-type": "application/json"}, b'{"err": "nf"}')
    upstream.replies["/envelope"] = (200, {"content-type": "application/json"},
                                     b'{"error": {"code": 7}}')
    upstream.replies["/fine"] = (200, {"content-type": "application/json"}, b'{"ok": true}')
    upstream.replies["/flag"] = (200, {"content-type": "application/json"}, b'{"status": "fail"}')
    g = start(gatehouse, upstream, route({"path_prefix": "/"}, {"response": {"status": [
        {"from": 404, "to": 204},
        {"from": 200, "to": 502, "when_exists": "/error"},
        {"from": 200, "to": 503, "when_equals": {"pointer": "/status", "value": "fail"}},
    ]}}))
    with client(g) as c:
        r = c.get("/missing")
        assert r.status_code == 204
        assert r.content == b"" and "content-length" not in r.headers
        r = c.get("/envelope")
        assert r.status_code == 502
        assert r.json() == {"error": {"code": 7}}  # the body is kept for the client to read
        r = c.get("/fine")
        assert r.status_code == 200 and r.json() == {"ok": True}
        assert c.get("/flag").status_code == 503


def test_chained_transforms(gatehouse, upstream):
    """Two transforms on one route: requests run them in order, responses in reverse."""
    upstream.replies["/c"] = (200, {"content-type": "application/json"}, b'{"v": 1}')
    g = start(gatehouse, upstream, route(
        {"path_prefix": "/"},
        {"request": {"body": [{"wrap": "inner"}], "headers": {"set": {"x-step": "one"}}},
         "response": {"body": [{"wrap": "outer"}]}},
        {"request": {"body": [{"wrap": "outer"}],
                     "headers": {"set": {"x-step": "{{ request.header.x-step }}-two"}}},
         "response": {"body": [{"set": "/second", "value": True}]}}))
    with client(g) as c:
        r = c.post("/c", json={"x": 1})
        assert r.status_code == 200
        seen = upstream.last()
        assert json.loads(seen["body"]) == {"outer": {"inner": {"x": 1}}}
        assert seen["headers"]["x-step"] == "one-two"
        # The second policy's response rules run first, then the first's.
        assert r.json() == {"outer": {"v": 1, "second": True}}
        assert r.headers["content-length"] == str(len(r.content))


def test_oversized_bodies(gatehouse, upstream):
    upstream.replies["/big"] = (200, {"content-type": "application/json"},
                                json.dumps({"blob": "x" * 5000}).encode())
    g = start(gatehouse, upstream, route({"path_prefix": "/"}, {
        "max_body_size": "1KiB",
        "request": {"body": [{"remove": "/a"}]},
        "response": {"body": [{"remove": "/a"}]}}))
    with client(g) as c:
        before = upstream.count()
        r = c.post("/small", json={"blob": "y" * 4000})
        assert r.status_code == 413
        assert upstream.count() == before  # never reached the upstream
        r = c.get("/big")
        assert r.status_code == 502
        assert "too large" in r.json()["error"]
        r = c.post("/small", json={"a": 1, "b": 2})
        assert r.status_code == 200
        assert json.loads(upstream.last()["body"]) == {"b": 2}


def test_non_json_bodies(gatehouse, upstream):
    upstream.replies["/html"] = (200, {"content-type": "text/html"}, b"<p>hi</p>")
    rules = {"request": {"body": [{"remove": "/a"}]}, "response": {"body": [{"remove": "/a"}]}}
    g = start(gatehouse, upstream,
              route({"path_prefix": "/reject"}, rules, name="reject"),
              route({"path_prefix": "/pass"}, dict(rules, on_non_json="pass"), name="pass"))
    upstream.replies["/reject/html"] = upstream.replies["/pass/html"] = upstream.replies["/html"]
    with client(g) as c:
        before = upstream.count()
        r = c.post("/reject/x", content=b"plain text", headers={"content-type": "text/plain"})
        assert r.status_code == 415
        r = c.post("/reject/x", content=b"{broken", headers={"content-type": "application/json"})
        assert r.status_code == 415
        assert upstream.count() == before
        assert c.get("/reject/html").status_code == 502
        r = c.post("/pass/x", content=b"plain text", headers={"content-type": "text/plain"})
        assert r.status_code == 200
        assert upstream.last()["body"] == "plain text"
        r = c.get("/pass/html")
        assert r.status_code == 200 and r.content == b"<p>hi</p>"
    m = g.metrics()
    assert m.value("gatehouse_transform_bodies_total", side="request", result="not_json") == 3
    assert m.value("gatehouse_transform_bodies_total", side="response", result="not_json") == 2


def test_coded_response_passes_through(gatehouse, upstream):
    raw = gzip.compress(b'{"a": 1, "b": 2}')
    upstream.replies["/gz"] = (200, {"content-type": "application/json",
                                     "content-encoding": "gzip"}, raw)
    g = start(gatehouse, upstream, route({"path_prefix": "/"}, {
        "response": {"body": [{"remove": "/a"}], "headers": {"set": {"x-seen": "yes"}}}}))
    with socket_get(g, "/gz") as (status, headers, body):
        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert body == raw  # untouched
        assert headers["x-seen"] == "yes"
    m = g.metrics()
    assert m.value("gatehouse_transform_bodies_total", side="response", result="coded") == 1
    assert m.value("gatehouse_transform_bodies_total", side="response", result="transformed") == 0


class socket_get:
    """A GET without content decoding: (status, headers, raw body)."""

    def __init__(self, g, path):
        self.g, self.path = g, path

    def __enter__(self):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", self.g.port, timeout=IO_TIMEOUT)
        self.conn.request("GET", self.path)
        r = self.conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def __exit__(self, *a):
        self.conn.close()


def test_bad_template_is_a_validate_error_with_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("""listeners:
  - {name: main, address: 127.0.0.1, port: 18080}
clusters:
  - name: up
    endpoints: ["127.0.0.1:9"]
routes:
  - name: api
    match: {path_prefix: /}
    cluster: up
    policies:
      - name: transform
        config:
          request:
            headers:
              set:
                X-User: "{{ request.heder.x-user }}"
""")
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert f"{path}:11:" in out.stderr, out.stderr  # the policy's line
    assert "request.headers.set.X-User (line 16)" in out.stderr, out.stderr  # the option's line
    assert "unknown variable 'request.heder.x-user'" in out.stderr, out.stderr


def test_templates_read_the_consumer_and_its_token_claims(gatehouse, upstream):
    """jwt_auth first in the chain: transform reads the consumer and the verified claims."""
    import base64
    import time

    import jwt as pyjwt
    secret = b"0123456789abcdef0123456789abcdef-hmac-secret"
    jwks = {"keys": [{"kty": "oct", "kid": "hs",
                      "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}]}
    auth = {"name": "jwt_auth", "config": {"jwks": json.dumps(jwks), "issuers": ["https://idp/"],
                                           "audiences": ["api"]}}
    r = route({"path_prefix": "/"}, {"request": {
        "headers": {"set": {"x-consumer": "{{ consumer.name }}",
                            "x-email": "{{ consumer.claims.email | lower }}"}},
        "body": [{"set": "/owner", "value": "{{ consumer.claims.sub }}"}]}})
    r["policies"].insert(0, auth)
    g = start(gatehouse, upstream, r)
    now = int(time.time())
    tok = pyjwt.encode({"iss": "https://idp/", "aud": "api", "sub": "alice", "iat": now,
                        "exp": now + 300, "email": "Alice@Example.TEST"}, secret,
                       algorithm="HS256", headers={"kid": "hs"})
    with client(g) as c:
        assert c.post("/x", json={"a": 1}).status_code == 401
        resp = c.post("/x", json={"a": 1}, headers={"authorization": f"Bearer {tok}"})
        assert resp.status_code == 200, resp.text
        seen = upstream.last()
        assert seen["headers"]["x-consumer"] == "alice"
        assert seen["headers"]["x-email"] == "alice@example.test"
        assert json.loads(seen["body"]) == {"a": 1, "owner": "alice"}


def test_http2_clients_get_the_same_transforms(gatehouse, upstream):
    upstream.replies["/gone"] = (404, {"content-type": "application/json"}, b'{"e": 1}')
    upstream.replies["/wrapped"] = (200, {"content-type": "application/json"},
                                    b'{"data": {"k": "v"}}')
    g = start(gatehouse, upstream, route({"path_prefix": "/"}, {
        "request": {"body": [{"rename": "/a", "to": "b"}]},
        "response": {"status": [{"from": 404, "to": 204}], "body": [{"unwrap": "/data"}]}}))
    with httpx.Client(http1=False, http2=True, timeout=IO_TIMEOUT) as c:
        r = c.post(g.url + "/echo", json={"a": 1})
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200
        assert json.loads(upstream.last()["body"]) == {"b": 1}
        r = c.get(g.url + "/wrapped")
        assert r.json() == {"k": "v"}
        assert r.headers["content-length"] == str(len(r.content))
        r = c.get(g.url + "/gone")
        assert r.status_code == 204 and r.content == b""
