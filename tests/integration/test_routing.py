"""Routing end to end: virtual hosts by Host, listeners bound to virtual hosts, the match
conditions (exact, prefix, template, regex, methods, headers, query), absolute-form targets and
Upgrade tunnels."""
from support import RawConn, Reply, cluster, request_bytes, wait_until


def local(name, body, **match):
    return {"name": name, "match": match or {"path_prefix": "/"},
            "direct_response": {"status": 200, "body": body}}


def get(gh, path, host="gh.test", headers=(), method="GET", port=None):
    with RawConn(port or gh.port) as c:
        c.send(request_bytes(method, path, headers=list(headers), host=host))
        r = c.read_response(method)
    return r.status, r.body.decode()


def test_virtual_hosts_are_chosen_by_host_header(gatehouse):
    gh = gatehouse({"virtual_hosts": [
        {"name": "api", "domains": ["api.example.com"], "routes": [local("api", "api")]},
        {"name": "wild", "domains": ["*.apps.example.com"], "routes": [local("wild", "wild")]},
        {"name": "ip", "domains": ["127.0.0.1"], "routes": [local("ip", "ip")]},
        {"name": "other", "domains": ["*"], "routes": [local("other", "fallback")]}]})
    assert get(gh, "/", host="api.example.com") == (200, "api")
    assert get(gh, "/", host="API.Example.COM") == (200, "api")
    assert get(gh, "/", host="api.example.com:8443") == (200, "api")
    assert get(gh, "/", host="x.apps.example.com") == (200, "wild")
    assert get(gh, "/", host="a.b.apps.example.com") == (200, "wild")
    assert get(gh, "/", host="apps.example.com") == (200, "fallback")
    assert get(gh, "/", host="127.0.0.1:9") == (200, "ip")
    assert get(gh, "/", host="unknown.test") == (200, "fallback")


def test_unknown_host_without_catch_all_is_404(gatehouse):
    gh = gatehouse({"virtual_hosts": [
        {"name": "api", "domains": ["api.example.com"], "routes": [local("api", "api")]}]})
    assert get(gh, "/", host="api.example.com") == (200, "api")
    status, body = get(gh, "/", host="evil.example.com")
    assert status == 404 and '"status":404' in body.replace(" ", "")


def test_listeners_serve_only_their_virtual_hosts(gatehouse):
    gh = gatehouse({
        "listeners": [{"name": "public", "address": "127.0.0.1", "port": "@main",
                       "virtual_hosts": ["public"]},
                      {"name": "internal", "address": "127.0.0.1", "port": "@internal",
                       "virtual_hosts": ["internal"]}],
        "virtual_hosts": [
            {"name": "public", "domains": ["*"], "routes": [local("pub", "public")]},
            {"name": "internal", "domains": ["*"], "routes": [local("int", "internal")]}]})
    assert get(gh, "/") == (200, "public")
    assert get(gh, "/", port=gh.ports["internal"]) == (200, "internal")


def test_match_conditions(gatehouse):
    gh = gatehouse({"routes": [
        local("exact", "exact", path_exact="/x"),
        local("template", "template", path_template="/users/{id}/orders/{order}"),
        local("regex", "regex", path_regex="/v[0-9]+/.*"),
        local("post-only", "post", path_prefix="/m", methods=["POST", "put"]),
        local("canary", "canary", path_prefix="/h", headers=[{"name": "X-Canary", "exact": "1"}]),
        local("no-debug", "nodebug", path_prefix="/h", headers=[{"name": "x-debug",
                                                                 "present": False}]),
        local("q", "query", path_prefix="/q", query=[{"name": "version", "exact": "2"}]),
        local("prefix", "prefix", path_prefix="/x")]})
    assert get(gh, "/x") == (200, "exact")
    assert get(gh, "/x/y") == (200, "prefix")
    assert get(gh, "/xyz") == (200, "prefix")
    assert get(gh, "/users/7/orders/9") == (200, "template")
    assert get(gh, "/users/7/orders")[0] == 404
    assert get(gh, "/users//orders/9")[0] == 404  # merged to /users/orders/9: 3 segments
    assert get(gh, "/v2/things") == (200, "regex")
    assert get(gh, "/av2/things")[0] == 404, "path_regex must match the whole path"
    assert get(gh, "/m", method="POST") == (200, "post")
    assert get(gh, "/m", method="PUT") == (200, "post")
    assert get(gh, "/m", method="GET")[0] == 404
    assert get(gh, "/h", headers=[("x-canary", "1")]) == (200, "canary")
    assert get(gh, "/h", headers=[("x-canary", "2")]) == (200, "nodebug")
    assert get(gh, "/h", headers=[("x-debug", "1")])[0] == 404
    assert get(gh, "/q?a=1&version=2") == (200, "query")
    assert get(gh, "/q?version=3")[0] == 404


def test_absolute_form_target_is_routed_by_its_authority(gatehouse, recorder):
    gh = gatehouse({"clusters": [cluster("rec", recorder)], "virtual_hosts": [
        {"name": "a", "domains": ["a.test"], "routes": [
            {"name": "a", "match": {"path_prefix": "/"}, "cluster": "rec"}]},
        {"name": "b", "domains": ["b.test"], "routes": [local("b", "b")]}]})
    with gh.conn() as c:
        c.send(b"GET http://a.test/p?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert c.read_response().body == b"recorded"
        c.send(b"GET http://b.test/p HTTP/1.1\r\nHost: b.test\r\n\r\n")
        assert c.read_response().body == b"b"
    [req] = recorder.request_list()
    assert req.request_line == "GET /p?q=1 HTTP/1.1"  # origin-form upstream
    assert req.header("host") == "a.test"


def test_upgrade_tunnel_relays_both_directions(gatehouse, recorder):
    recorder.script.append(Reply(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                 b"Upgrade: websocket\r\n\r\nhello-from-upstream"))
    gh = gatehouse({"clusters": [cluster("rec", recorder)],
                    "routes": [{"name": "ws", "match": {"path_prefix": "/"}, "cluster": "rec"}]})
    with gh.conn() as c:
        c.send(request_bytes("GET", "/ws", headers=[("Connection", "Upgrade"),
                                                   ("Upgrade", "websocket"),
                                                   ("Sec-WebSocket-Version", "13"),
                                                   ("Sec-WebSocket-Key", "dGhlIHNhbXBsZQ==")]))
        r = c.read_response(skip_interim=False)
        assert r.status == 101
        assert (r.header("upgrade") or "").lower() == "websocket"
        assert "upgrade" in (r.header("connection") or "").lower()
        assert c.read_exact(len(b"hello-from-upstream")) == b"hello-from-upstream"
        c.send(b"ping-from-client")
        wait_until(lambda: recorder.all_bytes().endswith(b"ping-from-client"),
                   message="tunnelled bytes at the upstream")
    [req] = recorder.request_list()
    assert req.header("upgrade") == "websocket"
    assert "upgrade" in req.header("connection").lower()
