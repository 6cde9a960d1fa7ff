"""Policy `cache`: an RFC 9111 shared cache, observed through an upstream that counts the
requests it gets. Storability (Cache-Control from both sides, Expires, heuristic freshness off
by default, the Authorization rule), hits answered without the upstream (Age, X-Cache,
Cache-Status), Vary with Accept-Encoding normalised, configurable keys, invalidation by unsafe
methods, revalidation with ETag / Last-Modified, and clients' conditional requests."""
import email.utils
import threading
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from support import IO_TIMEOUT, BackgroundHttpServer, simple_config, wait_until


class Upstream(BackgroundHttpServer):
    """Answers each path as `set(path, ...)` said (status, headers, body), 304 to a matching
    If-None-Match when the answer has an ETag; counts and records the requests per path."""

    def __init__(self):
        self.gates = {}  # path -> threading.Event the answer waits for
        self.answers = {}
        self.requests = []  # (method, target, headers dict lower-case)
        super().__init__(Handler)

    def set(self, path, headers=None, body=b"hello", status=200):
        with self.lock:
            self.answers[path] = (status, dict(headers or {}), body)

    def count(self, path=None):
        with self.lock:
            return sum(1 for r in self.requests if path is None or r[1].split("?")[0] == path)

    def last(self, path):
        with self.lock:
            return [r for r in self.requests if r[1] == path][-1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802 - the stdlib's name
        srv = self.server
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.command == "POST":
            self.rfile.read(int(headers.get("content-length") or 0))
        with srv.lock:
            srv.requests.append((self.command, self.path, headers))
            gate = srv.gates.get(self.path.split("?")[0])
        if gate is not None and not gate.wait(IO_TIMEOUT * 4):
            return
        with srv.lock:  # read after the gate: a test may change the answer meanwhile
            status, extra, body = srv.answers.get(self.path.split("?")[0], (404, {}, b"none"))
        etag = extra.get("etag")
        if etag and headers.get("if-none-match") == etag and self.command in ("GET", "HEAD"):
            status, body = 304, b""
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        if "date" not in {k.lower() for k in extra}:
            self.send_header("date", email.utils.formatdate(usegmt=True))
        if status != 304:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != 304:
            self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815
    do_POST = do_GET  # noqa: N815
    do_DELETE = do_GET  # noqa: N815


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    for gate in u.gates.values():
        gate.set()
    u.stop()


def start(gatehouse, upstream, **policy):
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up",
             "policies": [{"name": "cache", "config": policy}]}
    return gatehouse(simple_config({"name": "up", "endpoints": [upstream.endpoint]},
                                   routes=[route]))


@pytest.fixture
def client():
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        yield c


def http_date(offset_s):
    return email.utils.formatdate(time.time() + offset_s, usegmt=True)


def test_fresh_response_is_served_from_the_cache(gatehouse, upstream, client):
    upstream.set("/a", {"cache-control": "max-age=60", "content-type": "text/plain",
                        "x-custom": "kept"}, b"body-a")
    gh = start(gatehouse, upstream)
    r1 = client.get(f"{gh.url}/a")
    assert r1.status_code == 200 and r1.content == b"body-a"
    assert r1.headers["x-cache"] == "MISS"
    assert r1.headers["cache-status"] == "gatehouse; fwd=uri-miss; stored"
    for _ in range(3):
        r = client.get(f"{gh.url}/a")
        assert r.status_code == 200 and r.content == b"body-a"
        assert r.headers["x-cache"] == "HIT"
        assert r.headers["cache-status"].startswith("gatehouse; hit; ttl=")
        assert r.headers["x-custom"] == "kept"
        assert r.headers["content-type"] == "text/plain"
        assert int(r.headers["age"]) >= 0
    assert upstream.count("/a") == 1
    assert results_by_route(gh) == {("default/api", "hit"): 3, ("default/api", "miss"): 1}


def results_by_route(gh):
    """The non-zero gatehouse_cache_responses_total samples: {(route, result): count}."""
    out = {}
    for (name, labels), v in gh.metrics().items():
        if name == "gatehouse_cache_responses_total" and v:
            d = dict(labels)
            out[(d["route"], d["result"])] = v
    return out


def test_age_counts_the_upstream_age(gatehouse, upstream, client):
    upstream.set("/aged", {"cache-control": "max-age=600", "age": "100"})
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/aged")
    r = client.get(f"{gh.url}/aged")
    assert r.headers["x-cache"] == "HIT"
    assert 100 <= int(r.headers["age"]) < 200
    ttl = int(r.headers["cache-status"].split("ttl=")[1])
    assert 400 <= ttl <= 500


@pytest.mark.parametrize("headers,stored", [
    ({"cache-control": "max-age=60"}, True),
    ({"cache-control": "s-maxage=60, max-age=0"}, True),
    ({"cache-control": "public, max-age=60"}, True),
    ({"cache-control": "max-age=60, no-store"}, False),
    ({"cache-control": "max-age=60, private"}, False),
    ({"cache-control": "max-age=0"}, False),
    ({"cache-control": "s-maxage=0, max-age=60"}, False),
    ({}, False),                                          # no freshness information
    ({"last-modified": "Mon, 01 Jan 2024 00:00:00 GMT"}, False),  # heuristics are off
    ({"expires": "in-the-future"}, False),                # an invalid Expires has expired
    ({"cache-control": "max-age=60", "set-cookie": "a=1"}, False),
    ({"cache-control": "max-age=60", "vary": "*"}, False),
])
def test_response_storability(gatehouse, upstream, client, headers, stored):
    upstream.set("/s", headers)
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/s")
    r = client.get(f"{gh.url}/s")
    assert (r.headers["x-cache"] == "HIT") == stored
    assert upstream.count("/s") == (1 if stored else 2)


def test_expires_gives_freshness(gatehouse, upstream, client):
    upstream.set("/future", {"expires": http_date(120)})
    upstream.set("/past", {"expires": http_date(-120)})
    gh = start(gatehouse, upstream)
    for path, hits in (("/future", True), ("/past", False)):
        client.get(f"{gh.url}{path}")
        r = client.get(f"{gh.url}{path}")
        assert (r.headers["x-cache"] == "HIT") == hits, path


def test_heuristic_freshness_when_enabled(gatehouse, upstream, client):
    upstream.set("/lm", {"last-modified": http_date(-10 * 86400)})
    gh = start(gatehouse, upstream, heuristic_freshness=True)
    client.get(f"{gh.url}/lm")
    assert client.get(f"{gh.url}/lm").headers["x-cache"] == "HIT"
    assert upstream.count("/lm") == 1


def test_uncacheable_statuses_and_methods(gatehouse, upstream, client):
    upstream.set("/err", {"cache-control": "max-age=60"}, status=500)
    upstream.set("/gone", {"cache-control": "max-age=60"}, status=404)
    gh = start(gatehouse, upstream)
    for _ in range(2):
        assert client.get(f"{gh.url}/err").status_code == 500
        assert client.get(f"{gh.url}/gone").status_code == 404
    assert upstream.count("/err") == 2  # 500 is not cacheable by default
    assert upstream.count("/gone") == 1  # 404 is
    upstream.set("/p", {"cache-control": "max-age=60"})
    for _ in range(2):
        r = client.post(f"{gh.url}/p", content=b"x")
        assert r.headers["x-cache"] == "BYPASS"
    assert upstream.count("/p") == 2
    assert results_by_route(gh)[("default/api", "bypass")] == 2


def test_unsafe_method_invalidates_the_entry(gatehouse, upstream, client):
    upstream.set("/doc", {"cache-control": "max-age=60"}, b"v1")
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/doc")
    assert client.get(f"{gh.url}/doc").headers["x-cache"] == "HIT"
    upstream.set("/doc", {"cache-control": "max-age=60"}, b"v2")
    assert client.post(f"{gh.url}/doc", content=b"new").status_code == 200
    r = client.get(f"{gh.url}/doc")
    assert r.headers["x-cache"] == "MISS" and r.content == b"v2"


def test_head_is_answered_from_a_get_entry(gatehouse, upstream, client):
    upstream.set("/h", {"cache-control": "max-age=60"}, b"x" * 1234)
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/h")
    r = client.head(f"{gh.url}/h")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["x-cache"] == "HIT"
    assert r.headers["content-length"] == "1234"
    assert upstream.count("/h") == 1


def test_request_cache_control(gatehouse, upstream, client):
    upstream.set("/rc", {"cache-control": "max-age=60", "age": "5"})
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/rc")
    # no-cache, and max-age below the entry's age, from the client: the upstream is asked
    # (there is nothing to revalidate with).
    assert client.get(f"{gh.url}/rc", headers={"cache-control": "no-cache"}).headers[
        "x-cache"] == "MISS"
    assert client.get(f"{gh.url}/rc", headers={"pragma": "no-cache"}).headers["x-cache"] == "MISS"
    assert client.get(f"{gh.url}/rc", headers={"cache-control": "max-age=0"}).headers[
        "x-cache"] == "MISS"
    assert upstream.count("/rc") == 4
    assert client.get(f"{gh.url}/rc", headers={"cache-control": "max-age=30"}).headers[
        "x-cache"] == "HIT"
    # no-store: the response is not stored, the old entry still answers.
    upstream.set("/ns", {"cache-control": "max-age=60"})
    client.get(f"{gh.url}/ns", headers={"cache-control": "no-store"})
    assert client.get(f"{gh.url}/ns").headers["x-cache"] == "MISS"
    # only-if-cached: 504 rather than the upstream.
    r = client.get(f"{gh.url}/never", headers={"cache-control": "only-if-cached"})
    assert r.status_code == 504
    assert upstream.count("/never") == 0


def test_request_cache_control_can_be_ignored(gatehouse, upstream, client):
    upstream.set("/rc", {"cache-control": "max-age=60"})
    gh = start(gatehouse, upstream, request_cache_control=False)
    client.get(f"{gh.url}/rc")
    assert client.get(f"{gh.url}/rc", headers={"cache-control": "no-cache"}).headers[
        "x-cache"] == "HIT"


def test_vary_keeps_one_entry_per_variant(gatehouse, upstream, client):
    upstream.set("/v", {"cache-control": "max-age=60", "vary": "Accept-Encoding, X-Lang"})
    gh = start(gatehouse, upstream)

    def get(ae, lang="en"):
        return client.get(f"{gh.url}/v", headers={"accept-encoding": ae, "x-lang": lang}
                          ).headers["x-cache"]
    assert get("gzip, br") == "MISS"
    assert get("br,gzip") == "HIT"              # normalised: same codings
    assert get("br;q=0.8, gzip, identity") == "HIT"
    assert get("gzip") == "MISS"                # another variant
    assert get("gzip, br;q=0") == "HIT"         # br refused: same as plain gzip
    assert get("gzip, br", lang="de") == "MISS"
    assert get("gzip, br", lang="de") == "HIT"
    assert get("gzip, br") == "HIT"             # the first variant is still there
    assert upstream.count("/v") == 3


def test_authorization_rule(gatehouse, upstream, client):
    upstream.set("/priv", {"cache-control": "max-age=60"})
    upstream.set("/pub", {"cache-control": "public, max-age=60"})
    upstream.set("/shared", {"cache-control": "s-maxage=60"})
    gh = start(gatehouse, upstream)
    auth = {"authorization": "Bearer secret"}
    # Not stored from an authorized request without public / s-maxage / must-revalidate.
    for _ in range(2):
        r = client.get(f"{gh.url}/priv", headers=auth)
        assert r.headers["x-cache"] == "MISS"
    assert "authorization" in r.headers["cache-status"]
    assert upstream.count("/priv") == 2
    # An anonymous entry is not served to an authorized request either.
    client.get(f"{gh.url}/priv")
    assert client.get(f"{gh.url}/priv").headers["x-cache"] == "HIT"
    assert client.get(f"{gh.url}/priv", headers=auth).headers["x-cache"] == "MISS"
    # public and s-maxage allow it.
    for path in ("/pub", "/shared"):
        client.get(f"{gh.url}{path}", headers=auth)
        assert client.get(f"{gh.url}{path}", headers=auth).headers["x-cache"] == "HIT"
        assert upstream.count(path) == 1


def test_key_options(gatehouse, upstream, client):
    upstream.set("/k", {"cache-control": "max-age=60"})
    gh = start(gatehouse, upstream, key={"query": ["a", "b"], "headers": ["x-tenant"]})

    def get(q, tenant="t1"):
        return client.get(f"{gh.url}/k?{q}", headers={"x-tenant": tenant}).headers["x-cache"]
    assert get("a=1&b=2") == "MISS"
    assert get("b=2&a=1") == "HIT"         # sorted
    assert get("b=2&a=1&utm=x") == "HIT"   # not a key parameter
    assert get("a=1&b=3") == "MISS"
    assert get("a=1&b=2", tenant="t2") == "MISS"
    assert upstream.count("/k") == 3


def test_default_query_key_is_the_whole_sorted_query(gatehouse, upstream, client):
    upstream.set("/q", {"cache-control": "max-age=60"})
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/q?x=1&y=2")
    assert client.get(f"{gh.url}/q?y=2&x=1").headers["x-cache"] == "HIT"
    assert client.get(f"{gh.url}/q?y=2&x=1&z=3").headers["x-cache"] == "MISS"


def test_large_and_chunked_bodies(gatehouse, upstream, client):
    big = bytes(range(256)) * 1024  # 256 KiB
    upstream.set("/big", {"cache-control": "max-age=60"}, big)
    upstream.set("/mid", {"cache-control": "max-age=60"}, big[:100000])
    gh = start(gatehouse, upstream, max_object_size="128KiB")
    for _ in range(2):
        r = client.get(f"{gh.url}/big")
        assert r.content == big and r.headers["x-cache"] == "MISS"
    for _ in range(2):
        r = client.get(f"{gh.url}/mid")
        assert r.content == big[:100000]
    assert r.headers["x-cache"] == "HIT"
    assert r.headers["content-length"] == "100000"


def test_status_headers_can_be_turned_off(gatehouse, upstream, client):
    upstream.set("/a", {"cache-control": "max-age=60"})
    gh = start(gatehouse, upstream, status_headers=False)
    client.get(f"{gh.url}/a")
    r = client.get(f"{gh.url}/a")
    assert "x-cache" not in r.headers and "cache-status" not in r.headers
    assert upstream.count("/a") == 1


def test_client_conditional_request_gets_304_from_the_cache(gatehouse, upstream, client):
    lm = "Mon, 01 Jan 2024 00:00:00 GMT"
    upstream.set("/c", {"cache-control": "max-age=60", "etag": '"v1"', "last-modified": lm})
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/c")
    r = client.get(f"{gh.url}/c", headers={"if-none-match": '"v1"'})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == '"v1"' and r.headers["x-cache"] == "HIT"
    assert client.get(f"{gh.url}/c", headers={"if-none-match": 'W/"v1", "x"'}).status_code == 304
    assert client.get(f"{gh.url}/c", headers={"if-none-match": '"v0"'}).status_code == 200
    assert client.get(f"{gh.url}/c", headers={"if-modified-since": lm}).status_code == 304
    r = client.get(f"{gh.url}/c", headers={"if-modified-since": "Sun, 01 Jan 2023 00:00:00 GMT"})
    assert r.status_code == 200 and r.content == b"hello"
    assert upstream.count("/c") == 1


def test_stale_entry_is_revalidated_and_refreshed(gatehouse, upstream, client):
    # no-cache: stored, but each use asks the upstream first.
    upstream.set("/r", {"cache-control": "no-cache", "etag": '"e1"', "x-version": "1"}, b"full")
    gh = start(gatehouse, upstream)
    assert client.get(f"{gh.url}/r").headers["x-cache"] == "MISS"
    r = client.get(f"{gh.url}/r")
    assert r.status_code == 200 and r.content == b"full"
    assert r.headers["x-cache"] == "REVALIDATED"
    assert r.headers["cache-status"] == "gatehouse; fwd=stale; fwd-status=304"
    assert upstream.last("/r")[2]["if-none-match"] == '"e1"'
    # A 304 updates the stored fields.
    upstream.set("/r", {"cache-control": "no-cache", "etag": '"e1"', "x-version": "2"}, b"full")
    assert client.get(f"{gh.url}/r").headers["x-version"] == "2"
    # The client's own conditional is answered from the refreshed entry.
    r = client.get(f"{gh.url}/r", headers={"if-none-match": '"e1"'})
    assert r.status_code == 304
    # A changed resource: the 200 replaces the entry.
    upstream.set("/r", {"cache-control": "no-cache", "etag": '"e2"'}, b"new body")
    r = client.get(f"{gh.url}/r")
    assert r.content == b"new body" and r.headers["x-cache"] == "MISS"
    assert upstream.last("/r")[2]["if-none-match"] == '"e1"'
    r = client.get(f"{gh.url}/r")
    assert r.content == b"new body" and r.headers["x-cache"] == "REVALIDATED"
    assert upstream.count("/r") == 6


def test_expired_entry_is_revalidated_with_last_modified(gatehouse, upstream, client):
    lm = "Mon, 01 Jan 2024 00:00:00 GMT"
    upstream.set("/lm", {"cache-control": "max-age=1", "last-modified": lm}, b"dated")
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/lm")
    deadline = time.monotonic() + IO_TIMEOUT
    while time.monotonic() < deadline:  # the entry turns stale after its max-age
        r = client.get(f"{gh.url}/lm")
        if r.headers["x-cache"] != "HIT":
            break
        time.sleep(0.2)
    assert r.content == b"dated"
    assert upstream.last("/lm")[2]["if-modified-since"] == lm
    # The upstream's answer was a full 200 (it ignores If-Modified-Since): stored again.
    assert r.headers["x-cache"] == "MISS"


def test_entries_survive_a_reload(gatehouse, upstream, client):
    upstream.set("/a", {"cache-control": "max-age=60"})
    gh = start(gatehouse, upstream, zone="z1")
    client.get(f"{gh.url}/a")
    assert gh.reload() == "success"
    assert client.get(f"{gh.url}/a").headers["x-cache"] == "HIT"
    assert upstream.count("/a") == 1


def test_workers_share_the_store(gatehouse, upstream):
    upstream.set("/w", {"cache-control": "max-age=60"})
    gh = start(gatehouse, upstream)
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        c.get(f"{gh.url}/w")
    hits = []

    def one():
        with httpx.Client(timeout=IO_TIMEOUT * 2) as c:  # new connections: any worker
            hits.append(c.get(f"{gh.url}/w").headers["x-cache"])
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hits == ["HIT"] * 8
    assert upstream.count("/w") == 1


def concurrent_gets(url, n):
    """Starts n GETs at once (one connection each); returns (threads, results list)."""
    results = []
    client = httpx.Client(timeout=IO_TIMEOUT * 4, limits=httpx.Limits(max_connections=n + 10))

    def one():
        r = client.get(url)
        results.append((r.status_code, r.content, r.headers.get("cache-status", "")))
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results, client


def waiting(gh, zone="default"):
    return gh.metrics().get_value("gatehouse_cache_coalesced_waiting", zone=zone)


def test_concurrent_misses_make_one_upstream_request(gatehouse, upstream):
    upstream.set("/hot", {"cache-control": "max-age=60"}, b"hot body")
    upstream.gates["/hot"] = threading.Event()
    gh = start(gatehouse, upstream)
    threads, results, client = concurrent_gets(f"{gh.url}/hot", 100)
    # The leader's request reached the upstream; the 99 others wait for it in the gateway.
    wait_until(lambda: upstream.count("/hot") == 1 and waiting(gh) == 99, IO_TIMEOUT * 2,
               message="one upstream request and 99 waiters")
    upstream.gates["/hot"].set()
    for t in threads:
        t.join(IO_TIMEOUT * 4)
    client.close()
    assert len(results) == 100
    assert all(status == 200 and body == b"hot body" for status, body, _ in results)
    assert upstream.count("/hot") == 1
    assert sum("collapsed" in cs for _, _, cs in results) == 99
    m = gh.metrics()
    assert m.value("gatehouse_cache_coalesced_total", zone="default") == 99
    assert m.value("gatehouse_cache_coalesced_waiting", zone="default") == 0


def test_a_failed_leader_does_not_stall_the_others(gatehouse, upstream):
    upstream.set("/fail", {"cache-control": "max-age=60"}, b"broken", status=500)
    upstream.gates["/fail"] = threading.Event()
    gh = start(gatehouse, upstream, coalesce_timeout="60s")
    threads, results, client = concurrent_gets(f"{gh.url}/fail", 5)
    wait_until(lambda: upstream.count("/fail") == 1 and waiting(gh) == 4, IO_TIMEOUT * 2,
               message="one upstream request and 4 waiters")
    upstream.gates["/fail"].set()
    start_t = time.monotonic()
    for t in threads:
        t.join(IO_TIMEOUT * 4)
    client.close()
    assert time.monotonic() - start_t < 30  # far below the 60 s bound
    assert [r[0] for r in results] == [500] * 5
    assert upstream.count("/fail") == 5  # the answer was not storable: each asked itself


def test_a_waiter_goes_upstream_after_its_bound(gatehouse, upstream):
    upstream.set("/stuck", {"cache-control": "max-age=60"}, b"late")
    upstream.gates["/stuck"] = threading.Event()
    gh = start(gatehouse, upstream, coalesce_timeout="300ms")
    threads, results, client = concurrent_gets(f"{gh.url}/stuck", 2)
    # The leader is still held by the upstream; the other request stops waiting and asks too.
    wait_until(lambda: upstream.count("/stuck") == 2, IO_TIMEOUT * 2,
               message="the waiter's own upstream request")
    upstream.gates["/stuck"].set()
    for t in threads:
        t.join(IO_TIMEOUT * 4)
    client.close()
    assert [r[0] for r in results] == [200, 200]
    assert waiting(gh) == 0


def test_coalescing_can_be_turned_off(gatehouse, upstream):
    upstream.set("/off", {"cache-control": "max-age=60"})
    upstream.gates["/off"] = threading.Event()
    gh = start(gatehouse, upstream, coalesce=False)
    threads, results, client = concurrent_gets(f"{gh.url}/off", 3)
    wait_until(lambda: upstream.count("/off") == 3, IO_TIMEOUT * 2, message="3 upstream requests")
    upstream.gates["/off"].set()
    for t in threads:
        t.join(IO_TIMEOUT * 4)
    client.close()
    assert [r[0] for r in results] == [200] * 3


def poll_until_not_hit(client, url):
    """GETs `url` until its answer is no longer a fresh hit (its entry went stale); returns it."""
    def attempt():
        r = client.get(url)
        return r if r.headers.get("x-cache") != "HIT" else None
    return wait_until(attempt, IO_TIMEOUT * 2, interval=0.2, message="the entry to go stale")


def test_stale_if_error_with_the_upstream_killed(gatehouse, upstream, client):
    # connection: close, so that no pooled connection outlives the upstream's listener.
    close = {"connection": "close"}
    upstream.set("/sie", {"cache-control": "max-age=1, stale-if-error=300", **close},
                 b"old but good")
    upstream.set("/plain", {"cache-control": "max-age=1", **close}, b"no grace")
    upstream.set("/strict", {"cache-control": "max-age=1, must-revalidate", **close}, b"strict")
    gh = start(gatehouse, upstream, stale_if_error="60s")
    for path in ("/sie", "/plain", "/strict"):
        assert client.get(f"{gh.url}{path}").headers["x-cache"] == "MISS"
    upstream.stop()  # connections are refused from now on: the gateway answers 502
    r = poll_until_not_hit(client, f"{gh.url}/sie")
    assert r.status_code == 200 and r.content == b"old but good"
    assert r.headers["x-cache"] == "STALE"
    assert r.headers["cache-status"] == (
        "gatehouse; hit; fwd=stale; fwd-status=502; detail=stale-if-error")
    assert int(r.headers["age"]) >= 1
    # The configured bound covers a response without its own stale-if-error (stored a
    # little later than /sie, so it may still be fresh for a moment)...
    r = poll_until_not_hit(client, f"{gh.url}/plain")
    assert r.status_code == 200 and r.headers["x-cache"] == "STALE"
    # ...but not one with must-revalidate.
    assert poll_until_not_hit(client, f"{gh.url}/strict").status_code == 502
    counts = results_by_route(gh)
    assert counts[("default/api", "stale")] == 2 and counts[("default/api", "miss")] >= 4


def test_stale_if_error_on_an_upstream_5xx(gatehouse, upstream, client):
    upstream.set("/e", {"cache-control": "max-age=1, stale-if-error=300", "etag": '"a"'}, b"v1")
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/e")
    upstream.set("/e", {}, b"boom", status=503)
    r = poll_until_not_hit(client, f"{gh.url}/e")
    assert r.status_code == 200 and r.content == b"v1" and r.headers["x-cache"] == "STALE"
    assert "fwd-status=503" in r.headers["cache-status"]
    # Without a grace period the error goes through.
    upstream.set("/n", {"cache-control": "max-age=1"}, b"v1")
    client.get(f"{gh.url}/n")
    upstream.set("/n", {}, b"boom", status=500)
    assert poll_until_not_hit(client, f"{gh.url}/n").status_code == 500


def admin_post(gh, path):
    r = httpx.post(f"{gh.admin_url}{path}", timeout=IO_TIMEOUT)
    return r.status_code, r.json()


def test_purge_by_key_prefix_and_tag(gatehouse, upstream, client):
    for path, tags in (("/p/a", {"surrogate-key": "red blue"}), ("/p/b", {"cache-tag": "blue"}),
                       ("/q/c", {"cache-tag": "green, red"}), ("/q/d", {})):
        upstream.set(path, {"cache-control": "max-age=60", **tags}, path.encode())
    gh = start(gatehouse, upstream)
    host = f"127.0.0.1:{gh.port}"

    def state():
        return {p: client.get(f"{gh.url}{p}").headers["x-cache"]
                for p in ("/p/a", "/p/b", "/q/c", "/q/d")}
    state()
    assert set(state().values()) == {"HIT"}
    zones = httpx.get(f"{gh.admin_url}/cache", timeout=IO_TIMEOUT).json()["zones"]
    assert {"zone": "default"}.items() <= zones[0].items() and zones[0]["keys"] == 4
    assert admin_post(gh, "/cache/purge?tag=red") == (200, {"purged": 2})
    assert state() == {"/p/a": "MISS", "/p/b": "HIT", "/q/c": "MISS", "/q/d": "HIT"}
    assert admin_post(gh, f"/cache/purge?key={host}/q/d") == (200, {"purged": 1})
    assert admin_post(gh, f"/cache/purge?key={host}/q/d") == (200, {"purged": 0})
    assert state() == {"/p/a": "HIT", "/p/b": "HIT", "/q/c": "HIT", "/q/d": "MISS"}
    assert admin_post(gh, f"/cache/purge?prefix={host}/p/&zone=default") == (200, {"purged": 2})
    assert state() == {"/p/a": "MISS", "/p/b": "MISS", "/q/c": "HIT", "/q/d": "HIT"}
    assert admin_post(gh, "/cache/purge?tag=x&zone=nope")[0] == 404
    assert admin_post(gh, "/cache/purge?colour=red")[0] == 400
    assert admin_post(gh, "/cache/purge?tag=a&key=b")[0] == 400
    m = gh.metrics()
    assert m.value("gatehouse_cache_keys", zone="default") == 4
    assert m.value("gatehouse_cache_bytes", zone="default") > 0
    assert httpx.get(f"{gh.admin_url}/cache/purge?tag=red", timeout=IO_TIMEOUT).status_code == 405


def test_stale_while_revalidate_refreshes_in_the_background(gatehouse, upstream, client):
    # Age 5 over a max-age of 1: stored already stale, within its stale-while-revalidate.
    upstream.set("/swr", {"cache-control": "max-age=1, stale-while-revalidate=600",
                          "etag": '"s1"', "age": "5"}, b"swr body")
    gh = start(gatehouse, upstream)
    assert client.get(f"{gh.url}/swr").headers["x-cache"] == "MISS"
    # The refresh is held at the upstream: no client waits for it, every one gets the entry
    # stale at once, and none starts a refresh of its own.
    upstream.gates["/swr"] = threading.Event()
    for _ in range(4):
        r = client.get(f"{gh.url}/swr")
        assert r.status_code == 200 and r.content == b"swr body"
        assert r.headers["x-cache"] == "STALE"
        assert r.headers["cache-status"] == "gatehouse; hit; detail=stale-while-revalidate"
    wait_until(lambda: upstream.count("/swr") == 2, IO_TIMEOUT * 2, message="the refresh")
    assert upstream.last("/swr")[2]["if-none-match"] == '"s1"'
    assert upstream.count("/swr") == 2
    upstream.set("/swr", {"cache-control": "max-age=600", "etag": '"s1"'}, b"swr body")
    upstream.gates["/swr"].set()
    # The 304 refreshed the entry: fresh hits from then on, with no further upstream request.
    wait_until(lambda: client.get(f"{gh.url}/swr").headers["x-cache"] == "HIT",
               IO_TIMEOUT * 2, message="the refreshed entry")
    assert upstream.count("/swr") == 2
    assert results_by_route(gh)[("default/api", "stale")] >= 4


def test_stale_while_revalidate_takes_a_new_body_and_survives_a_failed_refresh(
        gatehouse, upstream, client):
    upstream.set("/swn", {"cache-control": "max-age=1, stale-while-revalidate=600",
                          "age": "5"}, b"old body")
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/swn")
    # A failing refresh leaves the entry answering stale; the next stale use tries again.
    upstream.set("/swn", {}, b"broken", status=500)
    assert client.get(f"{gh.url}/swn").content == b"old body"
    wait_until(lambda: upstream.count("/swn") == 2, IO_TIMEOUT * 2, message="a refresh")
    upstream.set("/swn", {"cache-control": "max-age=600"}, b"new body")
    wait_until(lambda: client.get(f"{gh.url}/swn").content == b"new body", IO_TIMEOUT * 2,
               message="the new body")
    assert client.get(f"{gh.url}/swn").headers["x-cache"] == "HIT"


def test_no_stale_while_revalidate_without_a_grant(gatehouse, upstream, client):
    upstream.set("/nsw", {"cache-control": "max-age=1", "etag": '"n1"', "age": "5"}, b"b")
    gh = start(gatehouse, upstream)
    client.get(f"{gh.url}/nsw")
    assert client.get(f"{gh.url}/nsw").headers["x-cache"] == "REVALIDATED"
    # The configured default grants it.
    gh2 = start(gatehouse, upstream, zone="other", stale_while_revalidate="1m")
    client.get(f"{gh2.url}/nsw")
    upstream.gates["/nsw"] = threading.Event()
    assert client.get(f"{gh2.url}/nsw").headers["x-cache"] == "STALE"
    wait_until(lambda: upstream.count("/nsw") == 4, IO_TIMEOUT * 2, message="the refresh")
    upstream.gates["/nsw"].set()
