"""Host health (issue #3): active HTTP and TCP health checks, outlier ejection, panic mode and
slow start. Upstreams here are small named servers whose health-check answer and request
answer a test flips at run time; every wait polls /metrics or traffic, never a bare sleep."""
import http.client
from http.server import BaseHTTPRequestHandler

import pytest

from support import BackgroundHttpServer, cluster, simple_config, wait_until
from test_tls import certs, tls_upstream  # noqa: F401 - fixtures

CHECK_PATH = "/health"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        if self.path == CHECK_PATH:
            status, body = srv.check_status, b"status: ok\n"
            with srv.lock:
                srv.checks += 1
        else:
            status, body = srv.status, srv.name.encode()
            with srv.lock:
                srv.hits += 1
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class NamedUpstream(BackgroundHttpServer):
    """Answers its name; `check_status` answers the health check path, `status` the rest."""

    def __init__(self, name):
        self.name = name
        self.status = 200
        self.check_status = 200
        self.hits = 0
        self.checks = 0
        super().__init__(_Handler)


@pytest.fixture
def upstreams():
    made = []

    def make(*names):
        for n in names:
            made.append(NamedUpstream(n))
        return made[-len(names):]
    yield make
    for u in made:
        u.stop()


def http_check(**extra):
    hc = {"path": CHECK_PATH, "interval": "100ms", "timeout": "100ms",
          "healthy_threshold": 1, "unhealthy_threshold": 2}
    hc.update(extra)
    return hc


def spread(gh, n=30):
    """Sends n requests on one keep-alive connection; returns {upstream name: count}."""
    counts = {}
    c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=10)
    try:
        for i in range(n):
            c.request("GET", f"/r{i}")
            r = c.getresponse()
            body = r.read().decode()
            key = body if r.status == 200 else f"status {r.status}"
            counts[key] = counts.get(key, 0) + 1
    finally:
        c.close()
    return counts


def gauge(gh, name, upstream, cluster_name="svc"):
    return gh.metrics().get_value(name, cluster=cluster_name, host=upstream.endpoint)


def wait_gauge(gh, name, upstream, want, timeout=15):
    wait_until(lambda: gauge(gh, name, upstream) == want, timeout,
               message=f"{name}{{host={upstream.name}}} == {want}")


def test_http_check_takes_host_out_and_back(gatehouse, upstreams):
    a, b = upstreams("a", "b")
    gh = gatehouse(simple_config(cluster("svc", a, b, health_check=http_check())))
    wait_until(lambda: gauge(gh, "gatehouse_upstream_host_health_checks_passed_total", b) >= 1,
               message="a passed health check")
    assert spread(gh, 20).keys() == {"a", "b"}

    b.check_status = 503
    wait_gauge(gh, "gatehouse_upstream_host_healthy", b, 0)
    assert spread(gh, 30) == {"a": 30}
    assert gauge(gh, "gatehouse_upstream_host_healthy", a) == 1

    b.check_status = 200
    wait_gauge(gh, "gatehouse_upstream_host_healthy", b, 1)
    assert spread(gh, 20).keys() == {"a", "b"}


def test_http_check_body_and_status_ranges(gatehouse, upstreams):
    a, b = upstreams("a", "b")
    # 503 is expected here, but the body must say "healthy", which it never does.
    hc = http_check(expected_status=["200-299", 503], body_contains="healthy")
    gh = gatehouse(simple_config(cluster("svc", a, b, health_check=hc)))
    wait_gauge(gh, "gatehouse_upstream_host_healthy", a, 0)
    wait_gauge(gh, "gatehouse_upstream_host_healthy", b, 0)
    # Both down: panic mode spreads over both rather than failing.
    assert spread(gh, 20).keys() == {"a", "b"}


def test_tcp_check_with_killed_upstream(gatehouse, upstreams):
    a, b = upstreams("a", "b")
    hc = {"type": "tcp", "interval": "100ms", "timeout": "100ms", "unhealthy_threshold": 2}
    gh = gatehouse(simple_config(cluster("svc", a, b, health_check=hc)))
    wait_until(lambda: gauge(gh, "gatehouse_upstream_host_health_checks_passed_total", b) >= 1,
               message="b passed a tcp check")
    b.stop()
    wait_gauge(gh, "gatehouse_upstream_host_healthy", b, 0)
    failures = gh.metrics().value("gatehouse_upstream_connect_failures_total", cluster="svc")
    assert spread(gh, 30) == {"a": 30}
    # Nothing was even tried on the dead host once it was marked down.
    assert gh.metrics().value("gatehouse_upstream_connect_failures_total",
                              cluster="svc") == failures


def test_outlier_ejection_and_readmission(gatehouse, upstreams):
    a, b = upstreams("a", "b")
    b.status = 500
    od = {"consecutive_failures": 3, "base_ejection_time": "3s", "max_ejection_percent": 50}
    gh = gatehouse(simple_config(cluster("svc", a, b, outlier_detection=od)))

    def ejected():
        spread(gh, 4)
        return gauge(gh, "gatehouse_upstream_host_ejected", b) == 1
    wait_until(ejected, message="b ejected after consecutive 500s")
    assert gauge(gh, "gatehouse_upstream_host_ejections_total", b) == 1
    assert gauge(gh, "gatehouse_upstream_host_ejected", a) == 0
    hits = b.hits
    assert spread(gh, 30) == {"a": 30}
    assert b.hits == hits

    b.status = 200
    wait_gauge(gh, "gatehouse_upstream_host_ejected", b, 0)
    assert spread(gh, 20).keys() == {"a", "b"}
    assert gauge(gh, "gatehouse_upstream_host_ejections_total", b) == 1


def test_max_ejection_percent_keeps_hosts(gatehouse, upstreams):
    a, b = upstreams("a", "b")
    a.status = b.status = 500
    od = {"consecutive_failures": 2, "base_ejection_time": "30s", "max_ejection_percent": 50}
    gh = gatehouse(simple_config(cluster("svc", a, b, outlier_detection=od)))

    def one_ejected():
        spread(gh, 6)
        return gh.metrics().total("gatehouse_upstream_host_ejected") >= 1
    wait_until(one_ejected, message="one host ejected")
    spread(gh, 20)
    m = gh.metrics()
    # 50% of two hosts: the second is never ejected, however often it fails.
    assert m.total("gatehouse_upstream_host_ejected") == 1
    assert m.total("gatehouse_upstream_host_ejections_total") == 1


def test_panic_mode_when_most_hosts_are_down(gatehouse, upstreams):
    a, b, c = upstreams("a", "b", "c")
    gh = gatehouse(simple_config(
        cluster("svc", a, b, c, health_check=http_check()),
        cluster("strict", a, b, c, health_check=http_check(), panic_threshold=0),
        routes=[{"match": {"path_prefix": "/strict"}, "cluster": "strict"},
                {"match": {"path_prefix": "/"}, "cluster": "svc"}]))
    b.check_status = c.check_status = 503
    wait_gauge(gh, "gatehouse_upstream_host_healthy", b, 0)
    wait_gauge(gh, "gatehouse_upstream_host_healthy", c, 0)
    wait_until(lambda: gauge(gh, "gatehouse_upstream_host_healthy", c, "strict") == 0,
               message="c unhealthy in the strict cluster")
    # One of three available is below the 50% panic threshold: every host takes traffic.
    assert spread(gh, 30).keys() == {"a", "b", "c"}
    # With the panic threshold off, only the healthy host does.
    conn = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=10)
    try:
        seen = set()
        for i in range(20):
            conn.request("GET", f"/strict/{i}")
            r = conn.getresponse()
            seen.add(r.read().decode())
        assert seen == {"a"}
    finally:
        conn.close()


def test_slow_start_ramps_share_of_recovered_host(gatehouse, upstreams):
    a, b = upstreams("a", "b")
    spec = cluster("svc", a, b, health_check=http_check(),
                   slow_start={"window": "4s", "min_weight_percent": 5})
    gh = gatehouse(simple_config(spec), workers=1)
    b.check_status = 503
    wait_gauge(gh, "gatehouse_upstream_host_healthy", b, 0)
    b.check_status = 200
    wait_gauge(gh, "gatehouse_upstream_host_healthy", b, 1)
    shares = []
    for _ in range(200):
        counts = spread(gh, 40)
        shares.append(counts.get("b", 0) / 40)
        if len(shares) >= 4 and shares[-1] >= 0.45:
            break
    assert len(shares) >= 3, shares
    # Starts well below an even share and ends at it, rising on the way.
    assert shares[0] < 0.3, shares
    assert max(shares[-2:]) >= 0.45, shares
    firsts = shares[: len(shares) // 2]
    lasts = shares[len(shares) // 2:]
    assert sum(firsts) / len(firsts) < sum(lasts) / len(lasts), shares


def test_backup_group_takes_over_when_primaries_fail(gatehouse, upstreams):
    a, b, c = upstreams("a", "b", "c")
    spec = {"name": "svc", "health_check": http_check(),
            "endpoints": [a.endpoint, b.endpoint,
                          {"host": "127.0.0.1", "port": c.server_address[1], "priority": 1}]}
    gh = gatehouse(simple_config(spec))
    assert spread(gh, 30).keys() == {"a", "b"}
    # One primary of two is below the 70% failover threshold: the backup takes everything.
    a.check_status = 503
    wait_gauge(gh, "gatehouse_upstream_host_healthy", a, 0)
    assert spread(gh, 20) == {"c": 20}
    a.check_status = 200
    wait_gauge(gh, "gatehouse_upstream_host_healthy", a, 1)
    assert spread(gh, 30).keys() == {"a", "b"}


def test_health_state_survives_reload(gatehouse, upstreams):
    a, b = upstreams("a", "b")
    # Long enough that no new check can mark b healthy again during the test.
    hc = http_check(healthy_threshold=1000)
    gh = gatehouse(simple_config(cluster("svc", a, b, health_check=hc)))
    b.check_status = 503
    wait_gauge(gh, "gatehouse_upstream_host_healthy", b, 0)
    b.check_status = 200
    cfg = simple_config(cluster("svc", a, b, health_check=hc),
                        routes=[{"match": {"path_prefix": "/"}, "cluster": "svc"},
                                {"match": {"path_prefix": "/other"}, "cluster": "svc"}])
    gh.write_config(cfg)
    assert gh.reload() == "success"
    assert gauge(gh, "gatehouse_upstream_host_healthy", b) == 0
    assert spread(gh, 20) == {"a": 20}


def test_http_check_over_upstream_tls(gatehouse, tls_upstream, certs):
    up = tls_upstream()
    ok = {"name": "svc", "endpoints": [f"127.0.0.1:{up.port}"],
          "tls": {"sni": "upstream.test", "ca": certs["ca"][0]},
          "health_check": http_check(unhealthy_threshold=1)}
    bad = dict(ok, name="bad", tls={"sni": "other.test", "ca": certs["ca"][0]})
    gh = gatehouse(simple_config(ok, bad))
    host = f"127.0.0.1:{up.port}"
    # Verified TLS passes; the same host with a name that does not match fails its checks.
    wait_until(lambda: gh.metrics().get_value(
        "gatehouse_upstream_host_health_checks_passed_total", cluster="svc", host=host),
        message="a check over TLS passed")
    wait_until(lambda: gh.metrics().get_value(
        "gatehouse_upstream_host_healthy", cluster="bad", host=host) == 0,
        message="the mis-named TLS host marked unhealthy")
    assert gh.metrics().value("gatehouse_upstream_host_healthy", cluster="svc", host=host) == 1
