"""Basic proxying: methods, load balancing, local responses, forwarded headers, request ids,
hop-by-hop headers, header policies, rewrites and the demo subcommand."""
import re

import httpx
import pytest

from support import Gatehouse, cluster, request_bytes, simple_config

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def client(gh):
    return httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0)


def upstream_headers(resp_json):
    """Echo JSON headers -> {name: [values]}."""
    out = {}
    for k, v in resp_json["headers"]:
        out.setdefault(k, []).append(v)
    return out


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_method_is_proxied_with_path_query_and_body(gatehouse, echo, method):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    body = b"" if method in ("GET", "DELETE", "OPTIONS") else b"payload-" + method.encode()
    with client(gh) as c:
        r = c.request(method, "/some/path?x=1&y=two", content=body)
    assert r.status_code == 200
    j = r.json()
    assert j["method"] == method
    assert j["path"] == "/some/path?x=1&y=two"
    assert j["body_length"] == len(body)
    assert r.headers["x-upstream"] == "echo-a"


def test_head_is_proxied_without_body(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("HEAD", "/h") + request_bytes("GET", "/after-head"))
        r = c.read_response("HEAD")
        assert r.status == 200
        # The upstream's Content-Length describes the GET entity; HEAD carries no bytes, so the
        # next response must start right after the head.
        assert int(r.header("content-length")) > 0
        r2 = c.read_response()
        assert r2.status == 200 and r2.json()["path"] == "/after-head"
    assert [q["method"] for q in echo.requests] == ["HEAD", "GET"]


def test_round_robin_alternates_between_two_upstreams(gatehouse, echo, echo2):
    gh = gatehouse(simple_config(cluster("pair", echo, echo2)))
    seen = []
    with client(gh) as c:  # one keep-alive connection = one worker = one LB state
        for i in range(10):
            r = c.get(f"/rr/{i}")
            assert r.status_code == 200
            seen.append(r.json()["upstream"])
    assert seen.count("echo-a") == 5 and seen.count("echo-b") == 5, seen
    assert all(a != b for a, b in zip(seen, seen[1:])), f"not alternating: {seen}"


def test_direct_response_route_answers_without_upstream(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder), routes=[
        {"name": "hello", "match": {"path_prefix": "/hello"},
         "direct_response": {"status": 202, "body": "hi there\n", "content_type": "text/x-hi"}},
        {"name": "rest", "match": {"path_prefix": "/"}, "cluster": "rec"},
    ]))
    with client(gh) as c:
        r = c.get("/hello")
        assert r.status_code == 202
        assert r.text == "hi there\n"
        assert r.headers["content-type"] == "text/x-hi"
        assert r.headers["content-length"] == str(len("hi there\n"))
        h = c.head("/hello")
        assert h.status_code == 202 and h.content == b""
    assert recorder.total_bytes() == 0


def test_redirect_routes_build_location(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder), routes=[
        {"name": "moved", "match": {"path_prefix": "/old"},
         "redirect": {"status": 308, "path": "/new"}},
        {"name": "away", "match": {"path_prefix": "/docs"},
         "redirect": {"status": 302, "location": "https://docs.example.com/"}},
        {"name": "secure", "match": {"path_prefix": "/login"},
         "redirect": {"status": 301, "scheme": "https", "strip_query": True}},
        {"name": "rest", "match": {"path_prefix": "/"}, "cluster": "rec"},
    ]))
    with client(gh) as c:
        r = c.get("/old/thing?q=1", headers={"host": "api.test"}, follow_redirects=False)
        assert r.status_code == 308
        assert r.headers["location"] == "http://api.test/new?q=1"
        r = c.get("/docs/x", follow_redirects=False)
        assert r.status_code == 302
        assert r.headers["location"] == "https://docs.example.com/"
        r = c.get("/login?next=/x", headers={"host": "api.test"}, follow_redirects=False)
        assert r.status_code == 301
        assert r.headers["location"] == "https://api.test/login"
    assert recorder.total_bytes() == 0


def test_no_route_is_404_json_with_request_id(gatehouse, recorder):
    gh = gatehouse(simple_config(cluster("rec", recorder), routes=[
        {"name": "api", "match": {"path_prefix": "/api"}, "cluster": "rec"}]))
    with client(gh) as c:
        r = c.get("/elsewhere")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/json")
        j = r.json()
        assert j["status"] == 404
        assert j["error"]
        assert UUID4.match(j["request_id"]), j
        r = c.get("/elsewhere", headers={"x-request-id": "client-chosen-42"})
        assert r.status_code == 404 and r.json()["request_id"] == "client-chosen-42"
    assert recorder.total_bytes() == 0


def test_forwarded_headers_are_set_and_untrusted_values_replaced(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with client(gh) as c:
        r = c.get("/fwd", headers={"host": "shop.example:8443",
                                   "x-forwarded-for": "6.6.6.6",
                                   "x-forwarded-proto": "https",
                                   "x-forwarded-host": "evil.example"})
    h = upstream_headers(r.json())
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == ["shop.example:8443"]
    assert h["host"] == ["shop.example:8443"]


def test_forwarded_for_is_extended_from_trusted_proxy(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo),
                                 forwarded={"trusted_proxies": ["127.0.0.1/32"]}))
    with client(gh) as c:
        r = c.get("/fwd", headers={"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"})
    h = upstream_headers(r.json())
    assert h["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert h["x-forwarded-proto"] == ["https"]
    e = gh.wait_log(lambda e: e.get("path") == "/fwd")
    assert e["client_ip"] == "203.0.113.7"


def test_request_id_generated_when_absent(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    ids = set()
    with client(gh) as c:
        for _ in range(3):
            h = upstream_headers(c.get("/rid").json())
            assert len(h["x-request-id"]) == 1
            assert UUID4.match(h["x-request-id"][0]), h["x-request-id"]
            ids.add(h["x-request-id"][0])
    assert len(ids) == 3


@pytest.mark.parametrize("incoming,kept", [
    ("abc-123_def.ghi:7", True),
    ("has space", False),
    ("x" * 129, False),
    ("semi;colon", False),
])
def test_request_id_preserved_only_when_valid(gatehouse, echo, incoming, kept):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with client(gh) as c:
        h = upstream_headers(c.get("/rid", headers={"x-request-id": incoming}).json())
    assert len(h["x-request-id"]) == 1
    if kept:
        assert h["x-request-id"] == [incoming]
    else:
        assert UUID4.match(h["x-request-id"][0])


def test_hop_by_hop_request_headers_are_not_forwarded(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/hop", headers=[
            ("Connection", "keep-alive, X-Private-Hop"),
            ("X-Private-Hop", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Proxy-Connection", "keep-alive"),
            ("Trailer", "x-foo"),
            ("X-End-To-End", "kept"),
        ]))
        r = c.read_response()
    assert r.status == 200
    h = upstream_headers(r.json())
    for gone in ("x-private-hop", "keep-alive", "te", "proxy-connection", "trailer"):
        assert gone not in h, f"{gone} reached the upstream: {h}"
    assert "keep-alive" not in [v.lower() for v in h.get("connection", [])]
    assert h["x-end-to-end"] == ["kept"]


def test_hop_by_hop_response_headers_are_not_relayed(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/hop", headers=[
            ("x-echo-header", "Connection: X-Upstream-Hop"),
            ("x-echo-header", "X-Upstream-Hop: internal"),
            ("x-echo-header", "Keep-Alive: timeout=99"),
            ("x-echo-header", "Proxy-Connection: keep-alive"),
            ("x-echo-header", "X-Visible: yes"),
        ]))
        r = c.read_response()
    assert r.status == 200
    names = [k for k, _ in r.headers]
    assert "x-upstream-hop" not in names
    assert "keep-alive" not in names
    assert "proxy-connection" not in names
    assert r.header("x-visible") == "yes"


def test_headers_policy_edits_request_and_response(gatehouse, echo):
    policy = {"name": "headers", "config": {
        "request": {"add": {"x-added": "a1"}, "set": {"x-set": "forced"}, "remove": ["x-drop"]},
        "response": {"add": {"x-resp-added": "r1"}, "set": {"x-upstream": "masked"},
                     "remove": ["x-resp-drop"]},
    }}
    gh = gatehouse(simple_config(cluster("echo", echo), routes=[
        {"name": "p", "match": {"path_prefix": "/"}, "cluster": "echo", "policies": [policy]}]))
    with client(gh) as c:
        r = c.get("/pol", headers=[("x-set", "from-client"), ("x-drop", "gone"),
                                   ("x-added", "client-value"),
                                   ("x-echo-header", "x-resp-drop: should-vanish")])
    assert r.status_code == 200
    h = upstream_headers(r.json())
    assert sorted(h["x-added"]) == ["a1", "client-value"]
    assert h["x-set"] == ["forced"]
    assert "x-drop" not in h
    assert r.headers["x-resp-added"] == "r1"
    assert r.headers.get_list("x-upstream") == ["masked"]
    assert "x-resp-drop" not in r.headers


def test_virtual_host_policy_applies_to_local_replies(gatehouse, echo):
    gh = gatehouse({"clusters": [cluster("echo", echo)], "virtual_hosts": [{
        "name": "site", "domains": ["*"],
        "policies": [{"name": "headers", "config": {"response": {"set": {"x-served-by": "gh"}}}}],
        "routes": [{"name": "local", "match": {"path_prefix": "/local"},
                    "direct_response": {"status": 200, "body": "x"}},
                   {"name": "up", "match": {"path_prefix": "/"}, "cluster": "echo"}]}]})
    with client(gh) as c:
        assert c.get("/local").headers["x-served-by"] == "gh"
        assert c.get("/up").headers["x-served-by"] == "gh"


def test_rewrite_strip_prefix_and_host(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), routes=[
        {"name": "api", "match": {"path_prefix": "/api"}, "cluster": "echo",
         "rewrite": {"strip_prefix": "/api", "host": "internal.svc:8080"}},
        {"name": "rest", "match": {"path_prefix": "/"}, "cluster": "echo"},
    ]))
    with client(gh) as c:
        j = c.get("/api/users/7?expand=1", headers={"host": "public.example"}).json()
        assert j["path"] == "/users/7?expand=1"
        h = upstream_headers(j)
        assert h["host"] == ["internal.svc:8080"]
        # The client's authority is what X-Forwarded-Host reports.
        assert h["x-forwarded-host"] == ["public.example"]
        j = c.get("/api").json()
        assert j["path"] == "/"
        j = c.get("/other/api").json()
        assert j["path"] == "/other/api"


def test_rewrite_regex(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), routes=[
        {"name": "v2", "match": {"path_prefix": "/v2"}, "cluster": "echo",
         "rewrite": {"regex": "^/v2/(.*)$", "regex_replace": "/internal/\\1"}}]))
    with client(gh) as c:
        assert c.get("/v2/orders/9?a=b").json()["path"] == "/internal/orders/9?a=b"


def test_demo_subcommand_serves_and_round_robins(tmp_path):
    gh = Gatehouse(tmp_path, {}, workers=2, name="demo")
    try:
        gh.start_demo()
        with client(gh) as c:
            r = c.get("/hello")
            assert r.status_code == 200 and "hello from gatehouse" in r.text
            a = c.get("/anything").json()
            b = c.get("/anything").json()
            assert a["path"] == "/anything"
            assert a["upstream"] != b["upstream"], (a["upstream"], b["upstream"])
            r = c.get("/old/stuff", follow_redirects=False)
            assert r.status_code == 301
    finally:
        assert gh.stop() == 0


def test_repeated_response_headers_and_obs_text_are_preserved(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/cookies", headers=[
            ("x-echo-header", "Set-Cookie: a=1; Path=/"),
            ("x-echo-header", "Set-Cookie: b=2; HttpOnly"),
            ("X-Latin", "caf\xe9"),
        ]))
        r = c.read_response()
    assert r.header_all("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    h = upstream_headers(r.json())
    assert h["x-latin"] == ["caf\xe9"]
