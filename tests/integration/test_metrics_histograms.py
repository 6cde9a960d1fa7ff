"""Latency histograms on /metrics (issue 11, item 5): request duration per route and upstream
response time per cluster, in seconds, with cumulative buckets, +Inf, _sum and _count."""
import httpx

from support import cluster, http_get, simple_config, wait_until

SLOW_DELAY = 0.3  # above the 0.25 s bucket bound, below 0.5 s


def histogram(m, family, **labels):
    """{le: count} of one series, plus its _sum and _count."""
    buckets = {}
    for (name, lbls), v in m.items():
        d = dict(lbls)
        if name != family + "_bucket" or any(d.get(k) != v2 for k, v2 in labels.items()):
            continue
        buckets[d["le"]] = v
    return buckets, m.value(family + "_sum", **labels), m.value(family + "_count", **labels)


def check_shape(buckets, count):
    assert "+Inf" in buckets
    assert buckets["+Inf"] == count
    bounds = sorted((float(le), v) for le, v in buckets.items() if le != "+Inf")
    assert len(bounds) >= 10
    values = [v for _, v in bounds] + [buckets["+Inf"]]
    assert values == sorted(values), f"buckets not cumulative: {bounds}"


def test_request_and_upstream_histograms(gatehouse, echo):
    routes = [
        {"name": "slow", "match": {"path_prefix": "/slow"}, "cluster": "echo"},
        {"name": "fast", "match": {"path_prefix": "/"}, "cluster": "echo"},
    ]
    gh = gatehouse(simple_config(cluster("echo", echo), routes=routes), workers=2)
    fast = 12
    # Separate connections, so that both workers serve some: the page sums their cells.
    for i in range(fast):
        with httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0) as c:
            assert c.get(f"/fast/{i}").status_code == 200
    with httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0) as c:
        for _ in range(2):
            r = c.get("/slow", headers={"x-echo-delay": str(SLOW_DELAY)})
            assert r.status_code == 200

    family = "gatehouse_request_duration_seconds"
    # A request is observed when it ends, which may be just after the client has its response.
    m = wait_until(lambda: (lambda m: m if m.get_value(family + "_count", route="fast") == fast
                            and m.get_value(family + "_count", route="slow") == 2 else None)(
                                gh.metrics()), message="request histograms counted")
    buckets, total, count = histogram(m, family, route="slow")
    check_shape(buckets, count)
    assert buckets["0.25"] == 0
    assert buckets["10"] == 2
    assert total >= 2 * SLOW_DELAY
    buckets, total, count = histogram(m, family, route="fast")
    check_shape(buckets, count)
    assert total < fast * SLOW_DELAY

    upstream = "gatehouse_upstream_response_seconds"
    buckets, total, count = histogram(m, upstream, cluster="echo")
    check_shape(buckets, count)
    assert count == fast + 2
    assert buckets["0.25"] <= fast
    assert total >= 2 * SLOW_DELAY

    # Each family's HELP and TYPE appear exactly once on the page.
    status, body = http_get(gh.admin_port, "/metrics")
    assert status == 200
    text = body.decode()
    for name in (family, upstream):
        assert text.count(f"# HELP {name} ") == 1
        assert text.count(f"# TYPE {name} histogram\n") == 1
