"""Path normalisation before routing: the route that matches, and the path the upstream sees,
are those of the normalised path, so "/public/../admin" cannot reach an /admin route while
looking like /public, and encoded tricks are refused."""
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import cluster, simple_config


@pytest.fixture
def gh(gatehouse, recorder):
    g = gatehouse(simple_config(cluster("rec", recorder), routes=[
        {"name": "admin", "match": {"path_prefix": "/admin"},
         "direct_response": {"status": 200, "body": "admin-area"}},
        {"name": "public", "match": {"path_prefix": "/public"}, "cluster": "rec"},
    ]))
    g.recorder = recorder
    return g


def send(gh, target):
    with gh.conn() as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: gh.test\r\n\r\n".encode("latin-1"))
        return c.read_response()


@pytest.mark.parametrize("target", [
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/public/./../admin/",
    "/public//..//admin",
])
def test_dot_segments_resolve_before_routing(gh, target):
    r = send(gh, target)
    assert r.status == 200 and r.body == b"admin-area", (r.status, r.body[:200])
    assert gh.recorder.total_bytes() == 0, gh.recorder.all_bytes()[:300]
    e = gh.wait_log(lambda e: e.get("route") == "admin")
    assert e["path"].startswith("/admin")


@pytest.mark.parametrize("target,upstream_sees", [
    pytest.param("/public/a/../b", "/public/b"),
    pytest.param("/public/./x//y", "/public/x/y"),
    pytest.param("/public/%7Euser/%41", "/public/~user/A"),
    pytest.param("/public/q?x=../y&z=%2F", "/public/q?x=../y&z=%2F"),
    pytest.param("/public/plain", "/public/plain"),
])
def test_upstream_sees_the_normalised_path(gh, target, upstream_sees):
    r = send(gh, target)
    assert r.status == 200 and r.body == b"recorded"
    [req] = gh.recorder.request_list()
    assert req.request_line == f"GET {upstream_sees} HTTP/1.1"


@pytest.mark.parametrize("target", [
    pytest.param("/public/a%2Fb"),
    pytest.param("/public/a%2fb"),
    pytest.param("/public/a%5Cb"),
    pytest.param("/public/%00"),
    pytest.param("/public/a%00.txt"),
    pytest.param("/public\\..\\admin"),
    pytest.param("/public/a\\b"),
    pytest.param("/.."),
    pytest.param("/public/../../admin"),
    pytest.param("/public/%2e%2e/%2e%2e/admin"),
    pytest.param("/public/%zz"),
    pytest.param("/public/#frag"),
])
def test_ambiguous_paths_are_400_and_never_forwarded(gh, target):
    r = send(gh, target)
    assert r.status == 400, (r.status, r.body[:200])
    assert gh.recorder.total_bytes() == 0, gh.recorder.all_bytes()[:300]
    # The route stays reachable with a clean path.
    assert send(gh, "/public/ok").status == 200


# ---------------------------------------------------------------------------------------------
# A back-end that decodes the path twice and strips ";params" (issue 12, item 2). Routes deny
# /admin; "/" goes to that back-end, which must never see a path it would read as /admin.

PROTECTED = "/admin"


def _decode(p: str) -> str:
    # latin-1 keeps every byte; unquote leaves invalid escapes as they are, as servers do.
    return urllib.parse.unquote(p, encoding="latin-1")


def _strip_params(p: str) -> str:
    return re.sub(r";[^/]*", "", p)


def _resolve(p: str) -> str:
    """'\\' as '/', empty segments merged, dot segments resolved (clamped at the root)."""
    stack = []
    for seg in p.replace("\\", "/").split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if stack:
                stack.pop()
            continue
        stack.append(seg)
    return "/" + "/".join(stack)


def backend_views(target: str) -> set[str]:
    """Every path a sloppy back-end could act on: strip parameters before, between or after the
    two decodes, or not at all; then resolve."""
    path = target.split("?", 1)[0]
    d, s = _decode, _strip_params
    spellings = [d(d(path)), s(d(d(path))), d(s(d(path))), d(d(s(path)))]
    return {v for p in spellings for v in (p, _resolve(p))}


class _SloppyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, *a):
        pass

    def do_GET(self):
        with self.server.lock:
            self.server.seen.append(self.path)
        body = b"backend"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def sloppy_backend():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _SloppyHandler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.seen = []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.endpoint = f"127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


def _gateway(gatehouse, backend, path_normalization=None):
    extra = {"path_normalization": path_normalization} if path_normalization else {}
    return gatehouse(simple_config(cluster("sloppy", backend), routes=[
        {"name": "admin", "match": {"path_prefix": PROTECTED},
         "direct_response": {"status": 403, "body": "denied"}},
        {"name": "rest", "match": {"path_prefix": "/"}, "cluster": "sloppy"},
    ], **extra))


# Ways to climb out of /public, or to stand in front of a segment, as some back-end reads them.
_LEADS = ["", "/public/..", "/public/%2e%2e", "/public/%2E%2e", "/public/.%2e", "/public/%252e%252e",
          "/public/%252E%252E", "/public/%25%32%65%25%32%65", "/public/..;", "/public/..;x=1",
          "/public/%2e%2e;", "/public/.;/..", "/public/..%3b", "/public/..%253b", "/;x", "/;",
          "/.;", "/%3bx", "/%253bx", "/", "/.", "/%2e", "/%252e", "/public%2f..", "/public%252f..",
          "/public%5c..", "/public%255c..", "/public\\..", "/x/y/../..", "/public/..%2f",
          "/public/..%252f"]
# Spellings of "admin" (after a '/') that decode to it once, twice, or after stripping.
_ADMINS = ["admin", "%61dmin", "%61%64%6d%69%6e", "%61%64%6D%69%6E", "%2561dmin", "%2561%2564min",
           "%25%36%31dmin", "%25%36%31%25%36%34min", "%252561dmin", "adm%69n", "adm%2569n",
           "a%64min", "admin;x", "admin;", "admin%3bx", "admin%253bx", ";x/admin", "%3b/admin",
           ".;/admin", "%2e;/admin", "%252e;/admin", "admin/x", "admin%2fx", "admin%252fx"]
ATTACKS = [f"{lead}/{name}" for lead in _LEADS for name in _ADMINS] + [
    "//admin", "///admin", "/admin", "/%2fadmin", "/%252fadmin", "/%5cadmin", "/%255cadmin",
    "/public/..%5cadmin", "/public/..%255cadmin", "/public/%2e%2e%2fadmin",
    "/public/%252e%252e%252fadmin", "/public/..%c0%afadmin", "/public/..?/admin",
    "/public/%2e%2e/%2e%2e/admin", "/public;/../admin", "/public/;/../../admin",
]


def _probe(gh, backend, targets):
    """Sends each target; returns the targets that answered otherwise than 400/403/back-end 200
    and the paths the back-end received."""
    odd = []
    for target in targets:
        with gh.conn() as c:
            c.send(f"GET {target} HTTP/1.1\r\nHost: gh.test\r\n\r\n".encode("latin-1"))
            r = c.read_response()
        if not (r.status in (400, 403) or (r.status == 200 and r.body == b"backend")):
            odd.append((target, r.status, r.body[:80]))
    with backend.lock:
        seen = list(backend.seen)
    return odd, seen


def _reached(seen):
    return [(raw, sorted(v for v in backend_views(raw) if v.startswith(PROTECTED)))
            for raw in seen if any(v.startswith(PROTECTED) for v in backend_views(raw))]


@pytest.mark.parametrize("path_normalization", [
    pytest.param(None, id="defaults"),
    pytest.param({"path_parameters": "strip"}, id="strip_parameters"),
])
def test_sloppy_backend_never_sees_the_protected_prefix(gatehouse, sloppy_backend,
                                                        path_normalization):
    gh = _gateway(gatehouse, sloppy_backend, path_normalization)
    odd, seen = _probe(gh, sloppy_backend, ATTACKS)
    assert not odd, odd[:10]
    assert not _reached(seen), _reached(seen)[:10]
    # Ordinary paths still reach the back-end, so the above is not vacuous.
    odd, seen = _probe(gh, sloppy_backend, ["/public/x", "/public/100%25", "/public/a%20b", "/adm"])
    assert not odd and len(seen) >= 4, (odd, seen)


def test_sloppy_backend_is_reachable_when_the_protections_are_off(gatehouse, sloppy_backend):
    # The same probe with double encoding and ';' let through: proves it detects a bypass.
    gh = _gateway(gatehouse, sloppy_backend,
                  {"reject_double_encoding": False, "path_parameters": "keep"})
    odd, seen = _probe(gh, sloppy_backend, ["/%2561dmin", "/;x/admin/x", "/public/%252e%252e/admin"])
    assert not odd, odd
    assert {raw for raw, _ in _reached(seen)} == {"/%2561dmin", "/;x/admin/x",
                                                   "/public/%252e%252e/admin"}, seen


@pytest.mark.parametrize("target,reason", [
    ("/;x/admin/x", "';' parameter in path"),
    ("/%2561dmin", "double percent-encoding in path"),
    ("/admin%3bx", "encoded ';' in path"),
])
def test_rejections_say_why(gatehouse, sloppy_backend, target, reason):
    gh = _gateway(gatehouse, sloppy_backend)
    r = send(gh, target)
    assert r.status == 400, (r.status, r.body[:200])
    assert sloppy_backend.seen == []
