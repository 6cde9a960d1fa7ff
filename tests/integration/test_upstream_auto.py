"""Cluster `protocol: auto` (issue #6, item 2): over TLS, ALPN on an endpoint's first
connection chooses h2 or HTTP/1.1, and the choice is remembered for that endpoint."""
import httpx

from support import IO_TIMEOUT, cluster, simple_config, wait_until
from test_tls import certs, tls_config  # noqa: F401  (fixture reuse)


LOG = {"fields": ["path", "status", "protocol"]}


def protocols(gh):
    return [r.get("protocol") for r in gh.access_log()]


def run_requests(front, n=6):
    with httpx.Client(timeout=IO_TIMEOUT * 2) as c:
        for i in range(n):
            r = c.post(f"{front.url}/x{i}", content=b"b" * (1000 * i))
            assert r.status_code == 200
            assert r.json()["path"] == f"/x{i}"
            assert r.json()["body_length"] == 1000 * i


def auto_front(gatehouse, upstream_gh, name):
    return gatehouse(simple_config(
        {"name": "up", "protocol": "auto", "endpoints": [f"127.0.0.1:{upstream_gh.port}"],
         "tls": {"verify": False, "sni": "a.test"}}), name=name)


def test_auto_speaks_h2_to_a_tls_upstream_offering_h2(gatehouse, echo, certs):  # noqa: F811
    up = gatehouse(dict(tls_config(certs, echo), access_log=LOG), name="up_h2")  # h2, http/1.1
    front = auto_front(gatehouse, up, "front")
    run_requests(front)
    seen = wait_until(lambda: (lambda p: p if len(p) == 6 else None)(protocols(up)),
                      message="six requests logged upstream")
    assert len(seen) == 6 and all(p.startswith("HTTP/2") for p in seen), seen


def test_auto_falls_back_to_http1_when_h2_is_not_offered(gatehouse, echo, certs):  # noqa: F811
    up = gatehouse(dict(tls_config(certs, echo, alpn=["http/1.1"]), access_log=LOG), name="up_h1")
    front = auto_front(gatehouse, up, "front")
    run_requests(front)
    seen = wait_until(lambda: (lambda p: p if len(p) == 6 else None)(protocols(up)),
                      message="six requests logged upstream")
    assert seen == ["HTTP/1.1"] * 6, seen


def test_auto_over_cleartext_is_http1(gatehouse, echo):
    up = gatehouse(simple_config(cluster("e", echo), access_log=LOG), name="up_clear")
    front = gatehouse(simple_config(
        {"name": "up", "protocol": "auto", "endpoints": [f"127.0.0.1:{up.port}"]}), name="front")
    run_requests(front, n=3)
    seen = wait_until(lambda: (lambda p: p if len(p) == 3 else None)(protocols(up)),
                      message="three requests logged upstream")
    assert seen == ["HTTP/1.1"] * 3
