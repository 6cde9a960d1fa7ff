"""Success-rate outlier detection: a host failing far more often than its peers is ejected."""
import time

import pytest

from support import cluster, request_bytes, simple_config, wait_until

FAIL = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy"


def test_success_rate_ejects_the_outlier(gatehouse, echo_factory, recorder_factory):
    good = [echo_factory(f"e{i}") for i in range(4)]
    bad = recorder_factory(default=FAIL)
    gh = gatehouse(simple_config(cluster("c", *good, bad, outlier_detection={
        "consecutive_failures": 0, "max_ejection_percent": 40, "base_ejection_time": "30s",
        "success_rate": {"interval": "500ms", "minimum_hosts": 5, "request_volume": 10,
                         "stdev_factor": 1.9}})))
    labels = {"cluster": "c", "host": bad.endpoint}

    def ejected():
        with gh.conn() as c:
            for i in range(25):
                c.send(request_bytes("GET", f"/r{i}"))
                c.read_response()
        return gh.metrics().value("gatehouse_upstream_host_ejections_total", **labels) >= 1
    wait_until(ejected, timeout=30, message="success-rate ejection of the failing host")
    m = gh.metrics()
    assert m.value("gatehouse_upstream_host_ejected", **labels) == 1
    assert m.value("gatehouse_upstream_host_failures_total", **labels) >= 10
    for g in good:
        assert m.value("gatehouse_upstream_host_ejections_total", cluster="c",
                       host=g.endpoint) == 0
    # While ejected, nothing reaches it.
    before = len(bad.requests) if hasattr(bad, "requests") else None
    with gh.conn() as c:
        for i in range(40):
            c.send(request_bytes("GET", f"/after{i}"))
            assert c.read_response().status == 200
    if before is not None:
        assert len(bad.requests) == before
    assert "success rate" in gh.stderr()


@pytest.mark.parametrize("minimum_hosts,ejects", [(2, True), (3, False)])
def test_success_rate_needs_minimum_hosts(gatehouse, echo, recorder_factory, minimum_hosts,
                                          ejects):
    bad = recorder_factory(default=FAIL)
    gh = gatehouse(simple_config(cluster("c", echo, bad, outlier_detection={
        "consecutive_failures": 0, "max_ejection_percent": 50,
        "success_rate": {"interval": "200ms", "minimum_hosts": minimum_hosts,
                         "request_volume": 5, "stdev_factor": 0.5}})), workers=1)

    def ejections():
        with gh.conn() as c:
            for i in range(20):
                c.send(request_bytes("GET", f"/r{i}"))
                c.read_response()
        return gh.metrics().value("gatehouse_upstream_host_ejections_total", cluster="c",
                                  host=bad.endpoint)
    if ejects:
        wait_until(lambda: ejections() >= 1, timeout=20, message="ejection with 2 hosts")
    else:
        # Ten rounds of traffic spanning many 200 ms intervals: two hosts are fewer than
        # minimum_hosts 3, so no verdict is ever reached (the 2-host case above does eject).
        deadline = time.monotonic() + 2.0
        rounds = 0
        while time.monotonic() < deadline and rounds < 50:
            assert ejections() == 0
            rounds += 1
