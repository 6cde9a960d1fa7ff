"""Policy oauth2_introspection against a real gatehouse, an echo upstream and a small RFC 7662
endpoint: active and inactive tokens, client authentication, the cache (counted endpoint
hits, bounded by exp), scopes, and an unreachable or failing endpoint answering 503."""
import socket
import threading
import time

import httpx

from support import cluster, simple_config, wait_until
from support.authserver import IntrospectionServer
from support.common import free_port


def routed(echo, policy, **extra):
    return simple_config(cluster("echo", echo), routes=[
        {"name": "p", "match": {"path_prefix": "/"}, "cluster": "echo", "policies": [policy]}],
        **extra)


def policy(server, **opts):
    cfg = {"endpoint": server.url if server else f"http://127.0.0.1:{free_port()}/introspect",
           "client_id": "gatehouse", "client_secret": "s3cr3t:+/",
           "forward_claims": {"sub": "x-user", "scope": "x-scope"}, "groups_claim": "groups"}
    cfg.update(opts)
    return {"name": "oauth2_introspection", "config": cfg}


def client(gh):
    return httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0)


def bearer(t):
    return {"authorization": f"Bearer {t}"}


def upstream_headers(resp):
    out = {}
    for k, v in resp.json()["headers"]:
        out.setdefault(k, []).append(v)
    return out


def rejections(gh, reason):
    return gh.metrics().get_value("gatehouse_auth_rejections_total",
                                  policy="oauth2_introspection", reason=reason) or 0


def active(sub="alice", **extra):
    d = {"active": True, "sub": sub, "client_id": "web", "scope": "orders:read",
         "exp": int(time.time()) + 600, "groups": ["admins"]}
    d.update(extra)
    return d


def test_active_inactive_and_client_credentials(gatehouse, echo):
    idp = IntrospectionServer().start()
    try:
        idp.tokens["opaque-alice"] = active()
        gh = gatehouse(routed(echo, policy(idp, token_type_hint="access_token"),
                              access_log={"fields": ["path", "consumer"]}))
        with client(gh) as c:
            r = c.get("/a", headers={**bearer("opaque-alice"), "x-user": "mallory"})
            assert r.status_code == 200, r.text
            h = upstream_headers(r)
            assert h["x-user"] == ["alice"] and h["x-scope"] == ["orders:read"]
            assert idp.last_form == {"token": ["opaque-alice"],
                                     "token_type_hint": ["access_token"]}
            r = c.get("/b", headers=bearer("unknown-token"))
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == \
                'Bearer realm="gatehouse", error="invalid_token"'
            r = c.get("/c")
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'Bearer realm="gatehouse"'
        assert gh.wait_log(lambda e: e["path"] == "/a")["consumer"] == "alice"
        assert rejections(gh, "inactive") == 1 and rejections(gh, "missing") == 1
        # client_id is the consumer when there is no sub (client-credentials tokens).
        idp.tokens["svc"] = active(sub=None)
        del idp.tokens["svc"]["sub"]
        with client(gh) as c:
            r = c.get("/svc", headers=bearer("svc"))
            assert r.status_code == 200
        assert gh.wait_log(lambda e: e["path"] == "/svc")["consumer"] == "web"
    finally:
        idp.stop()


def test_cache_counts_endpoint_hits_and_honours_exp(gatehouse, echo):
    idp = IntrospectionServer().start()
    try:
        idp.tokens["t1"] = active()
        idp.tokens["short"] = active(exp=int(time.time()) + 2)
        gh = gatehouse(routed(echo, policy(idp, negative_cache_ttl="30s")), workers=1)
        with client(gh) as c:
            for _ in range(10):
                assert c.get("/x", headers=bearer("t1")).status_code == 200
            assert idp.call_count() == 1
            for _ in range(5):
                assert c.get("/x", headers=bearer("nope")).status_code == 401
            assert idp.call_count() == 2  # inactive answers are cached too (negative TTL)
            assert c.get("/x", headers=bearer("short")).status_code == 200
            assert idp.call_count() == 3
            # Past its exp the cached answer is gone, and the token itself is refused.
            wait_until(lambda: c.get("/x", headers=bearer("short")).status_code == 401,
                       timeout=15, message="token refused after its exp")
            assert idp.call_count() >= 4
    finally:
        idp.stop()


def test_scopes_answer_403(gatehouse, echo):
    idp = IntrospectionServer().start()
    try:
        idp.tokens["reader"] = active()
        idp.tokens["writer"] = active(scope="orders:read orders:write")
        gh = gatehouse(routed(echo, policy(idp, scopes=["orders:write"])))
        with client(gh) as c:
            r = c.get("/w", headers=bearer("reader"))
            assert r.status_code == 403 and r.json()["error"] == "insufficient scope"
            assert c.get("/w", headers=bearer("writer")).status_code == 200
        assert rejections(gh, "insufficient_scope") == 1
    finally:
        idp.stop()


def test_endpoint_down_or_failing_is_503_never_401(gatehouse, echo):
    gh = gatehouse(routed(echo, policy(None, timeout="2s")))
    with client(gh) as c:
        r = c.get("/x", headers=bearer("any"))
        assert r.status_code == 503
        assert r.json()["error"] == "authorization server unavailable"
    assert rejections(gh, "endpoint_error") == 1
    assert echo.request_count() == 0

    idp = IntrospectionServer().start()
    try:
        idp.tokens["t"] = active()
        idp.fail_status = 500
        gh2 = gatehouse(routed(echo, policy(idp)), name="gh-fail")
        with client(gh2) as c:
            assert c.get("/x", headers=bearer("t")).status_code == 503
            idp.fail_status = 0
            # Failures are not cached: the next request asks again and succeeds.
            assert c.get("/x", headers=bearer("t")).status_code == 200
        # Wrong client credentials: the endpoint answers 401 to us, which is our outage.
        idp.client_secret = "rotated"
        gh3 = gatehouse(routed(echo, policy(idp)), name="gh-creds")
        with client(gh3) as c:
            assert c.get("/x", headers=bearer("t")).status_code == 503
    finally:
        idp.stop()


def test_concurrent_requests_with_one_new_token_make_one_call(gatehouse, echo):
    idp = IntrospectionServer().start()
    try:
        idp.tokens["burst"] = active()
        idp.delay = 0.5
        gh = gatehouse(routed(echo, policy(idp)), workers=1)
        statuses = []

        def one():
            with client(gh) as c:
                statuses.append(c.get("/b", headers=bearer("burst")).status_code)
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200] * 8
        assert idp.call_count() == 1
    finally:
        idp.stop()


def test_silent_endpoint_times_out_and_oversized_answer_is_refused(gatehouse, echo):
    # A listening socket that never accepts: connect succeeds (backlog), no answer ever comes.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    idp = IntrospectionServer().start()
    try:
        idp.tokens["big"] = active(padding="x" * 300_000)  # over the 256 KiB answer limit
        routes = [
            {"name": "s", "match": {"path_prefix": "/s"}, "cluster": "echo", "policies": [
                policy(None, endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}/i",
                       timeout="300ms")]},
            {"name": "b", "match": {"path_prefix": "/b"}, "cluster": "echo",
             "policies": [policy(idp)]},
        ]
        gh = gatehouse(simple_config(cluster("echo", echo), routes=routes))
        with client(gh) as c:
            t0 = time.monotonic()
            assert c.get("/s", headers=bearer("t")).status_code == 503
            assert time.monotonic() - t0 < 5
            assert c.get("/b", headers=bearer("big")).status_code == 503
        assert rejections(gh, "endpoint_error") == 2
        assert echo.request_count() == 0
    finally:
        idp.stop()
        silent.close()
