"""Admin API (/metrics, /healthz, /readyz), access log contents, SIGUSR1 log reopening and
graceful shutdown."""
import json
import signal
import socket
import threading

from support import (IO_TIMEOUT, RawConn, cluster, http_get, request_bytes, simple_config,
                      wait_until)

ALL_FIELDS = ["time", "request_id", "client_ip", "method", "host", "path", "query", "protocol",
              "status", "route", "cluster", "upstream", "upstream_status", "bytes_in",
              "bytes_out", "duration_ms", "upstream_connect_ms", "upstream_response_ms",
              "user_agent", "referer", "error"]


def mixed_config(echo):
    return simple_config(cluster("echo", echo), routes=[
        {"name": "moved", "match": {"path_prefix": "/moved"}, "redirect": {"path": "/x"}},
        {"name": "down", "match": {"path_prefix": "/down"},
         "direct_response": {"status": 503, "body": "maintenance"}},
        {"name": "api", "match": {"path_prefix": "/api"}, "cluster": "echo"}])


def test_metrics_expose_documented_series(gatehouse, echo):
    gh = gatehouse(mixed_config(echo))
    with gh.conn() as c:
        for _ in range(3):
            c.send(request_bytes("GET", "/api/ok"))
            assert c.read_response().status == 200
        c.send(request_bytes("GET", "/api/missing", headers=[("x-echo-status", "404")]))
        assert c.read_response().status == 404
        c.send(request_bytes("GET", "/down"))
        assert c.read_response().status == 503
        c.send(request_bytes("GET", "/moved"))
        assert c.read_response().status == 302
        c.send(request_bytes("GET", "/nowhere"))
        assert c.read_response().status == 404
    status, body = http_get(gh.admin_port, "/metrics")
    assert status == 200
    text = body.decode()
    for name, typ in [("gatehouse_route_responses_total", "counter"),
                      ("gatehouse_upstream_response_seconds", "histogram"),
                      ("gatehouse_connections_active", "gauge"),
                      ("gatehouse_upstream_pool_reuse_ratio", "gauge"),
                      ("gatehouse_config_reloads_total", "counter"),
                      ("gatehouse_requests_total", "counter")]:
        assert f"# TYPE {name} {typ}\n" in text, f"{name} {typ} not declared"
    m = gh.metrics()
    rr = "gatehouse_route_responses_total"
    assert m.value(rr, route="api", **{"class": "2xx"}) == 3
    assert m.value(rr, route="api", **{"class": "4xx"}) == 1
    assert m.value(rr, route="down", **{"class": "5xx"}) == 1
    assert m.value(rr, route="moved", **{"class": "3xx"}) == 1
    assert m.value("gatehouse_no_route_total") == 1
    assert m.value("gatehouse_requests_total") == 7
    # Histogram: cumulative buckets, +Inf == count == responses received from upstream.
    h = "gatehouse_upstream_response_seconds"
    buckets = sorted(((float(dict(lbl)["le"]), v) for (n, lbl), v in m.items()
                      if n == h + "_bucket" and dict(lbl).get("cluster") == "echo"))
    assert len(buckets) >= 5 and buckets[-1][0] == float("inf")
    values = [v for _, v in buckets]
    assert values == sorted(values), "histogram buckets are not cumulative"
    assert buckets[-1][1] == m.value(h + "_count", cluster="echo") == 4
    assert m.value(h + "_sum", cluster="echo") > 0
    ratio = m.value("gatehouse_upstream_pool_reuse_ratio", cluster="echo")
    assert 0.5 <= ratio <= 1  # 4 sequential requests on one client connection: >= 3 reused
    assert m.value("gatehouse_config_reloads_total", result="success") == 0
    assert m.value("gatehouse_config_reloads_total", result="failure") == 0
    assert m.value("gatehouse_upstream_requests_total", cluster="echo") == 4


def test_connections_active_gauge_follows_open_connections(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    conns = [RawConn(gh.port) for _ in range(3)]
    try:
        for c in conns:
            c.send(request_bytes("GET", "/x"))
            assert c.read_response().status == 200
        wait_until(lambda: gh.metrics().value("gatehouse_connections_active") == 3,
                   message="3 active connections")
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: gh.metrics().value("gatehouse_connections_active") == 0,
               message="0 active connections")
    assert gh.metrics().value("gatehouse_connections_accepted_total") >= 4


def test_admin_endpoints(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    assert http_get(gh.admin_port, "/healthz") == (200, b"ok\n")
    assert http_get(gh.admin_port, "/readyz") == (200, b"ready\n")
    assert http_get(gh.admin_port, "/nope")[0] == 404
    cfg = json.loads(http_get(gh.admin_port, "/config")[1])
    assert cfg["workers"] == 2 and cfg["routes"] == 1 and cfg["clusters"] == 1
    with RawConn(gh.admin_port) as c:
        c.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
        assert c.read_response().status == 405


def test_access_log_lines_carry_request_route_upstream_status_bytes_durations(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), access_log={"fields": ALL_FIELDS}))
    body = b"b" * 1234
    req = request_bytes("POST", "/logged?q=1", headers=[("User-Agent", "itest/1"),
                                                       ("Referer", "http://r.test/")], body=body)
    with gh.conn() as c:
        c.send(req)
        r = c.read_response()
    assert r.status == 200
    sent_id = dict(r.json()["headers"])["x-request-id"]
    e = gh.wait_log(lambda e: e["path"] == "/logged")
    assert e["request_id"] == sent_id
    assert e["route"] == "all" and e["cluster"] == "echo"
    assert e["upstream"] == echo.endpoint
    assert e["status"] == 200 and e["upstream_status"] == 200
    assert e["method"] == "POST" and e["query"] == "q=1" and e["protocol"] == "HTTP/1.1"
    assert e["host"] == "gh.test" and e["client_ip"] == "127.0.0.1"
    assert e["user_agent"] == "itest/1" and e["referer"] == "http://r.test/"
    assert e["bytes_in"] == len(req)
    assert e["bytes_out"] == len(r.raw_head) + len(r.body)
    assert e["duration_ms"] >= 0
    assert e["upstream_connect_ms"] is not None and e["upstream_connect_ms"] >= 0
    assert e["upstream_response_ms"] >= 0
    assert e["error"] == ""
    assert e["time"].endswith("Z")


def test_access_log_keeps_utf8_and_escapes_invalid_bytes(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), access_log={"fields": ALL_FIELDS}))
    agent = "café ☕ \U0001F600"
    with gh.conn() as c:
        c.send(b"GET /utf8/caf%C3%A9 HTTP/1.1\r\nHost: gh.test\r\nUser-Agent: "
               + agent.encode() + b"\r\nReferer: a\xff\xfeb\xc3\r\n\r\n")
        assert c.read_response().status == 200
    e = gh.wait_log(lambda e: e["path"].startswith("/utf8/"))
    gh.access_log_path.read_bytes().decode("utf-8")  # the whole file is valid UTF-8
    assert e["user_agent"] == agent  # UTF-8 written as UTF-8, not byte-wise \u00XX
    assert e["referer"] == "a\\xff\\xfeb\\xc3"  # each invalid byte as \xHH
    assert e["path"] in ("/utf8/café", "/utf8/caf%C3%A9")


def test_access_log_default_fields_and_local_and_rejected_requests(gatehouse, echo):
    gh = gatehouse(mixed_config(echo))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/down", headers=[("X-Request-ID", "local-1")]))
        r = c.read_response()
        assert r.status == 503
    with gh.conn() as c:
        c.send(b"GET /bad HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert c.read_response().status == 400
    e = gh.wait_log(lambda e: e.get("request_id") == "local-1")
    for k in ("time", "request_id", "client_ip", "method", "host", "path", "status", "route",
              "upstream", "bytes_in", "bytes_out", "duration_ms"):
        assert k in e, f"default field {k} missing: {e}"
    assert e["route"] == "down" and e["upstream"] == "" and e["status"] == 503
    assert e["bytes_out"] == len(r.raw_head) + len(r.body)
    bad = gh.wait_log(lambda e: e.get("status") == 400)
    assert bad["route"] == ""


def test_sigusr1_reopens_access_log(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/before"))
        assert c.read_response().status == 200
    gh.wait_log(lambda e: e["path"] == "/before")
    rotated = gh.access_log_path.with_name("access.log.1")
    gh.access_log_path.rename(rotated)
    gh.signal(signal.SIGUSR1)
    wait_until(lambda: "access log reopened" in gh.stderr(), message="reopen to be logged")
    with gh.conn() as c:
        c.send(request_bytes("GET", "/after"))
        assert c.read_response().status == 200
    wait_until(lambda: gh.access_log_path.exists(), message="a new access log at the old path")
    gh.wait_log(lambda e: e["path"] == "/after")
    old = [json.loads(ln) for ln in rotated.read_text().splitlines()]
    assert [e["path"] for e in old] == ["/before"]
    assert [e["path"] for e in gh.access_log()] == ["/after"]


def test_graceful_shutdown_completes_in_flight_request_and_refuses_new(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo)))
    result = {}

    def slow_client():
        try:
            with gh.conn(timeout=30) as c:
                c.send(request_bytes("GET", "/slow", headers=[("x-echo-wait", "finish")]))
                r = c.read_response(timeout=30)
                result["status"] = r.status
                result["json"] = r.json()
                result["connection"] = r.header("connection")
                result["closed_after"] = c.wait_closed(timeout=IO_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - reported by the assertions below
            result["error"] = repr(e)

    t = threading.Thread(target=slow_client, daemon=True)
    t.start()
    admin = RawConn(gh.admin_port)  # a load balancer's health-check connection
    try:
        wait_until(lambda: echo.request_count() == 1, message="the slow request upstream")
        admin.send(b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")
        assert admin.read_response().status == 200
        gh.signal(signal.SIGTERM)

        def readyz_on_open_conn():
            admin.send(b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")
            return admin.read_response().status == 503
        wait_until(readyz_on_open_conn, interval=0.05, message="/readyz to answer 503")

        def refused():
            try:
                socket.create_connection(("127.0.0.1", gh.port), timeout=2).close()
                return False
            except ConnectionRefusedError:
                return True
        wait_until(refused, interval=0.05, message="new connections to be refused")
        assert gh.proc.poll() is None, "exited before the in-flight request finished"
    finally:
        admin.close()
        echo.release("finish")
    t.join(timeout=30)
    assert not t.is_alive()
    assert "error" not in result, result
    assert result["status"] == 200 and result["json"]["path"] == "/slow"
    assert (result["connection"] or "").lower() == "close"
    assert result["closed_after"]
    assert gh.proc.wait(timeout=20) == 0


def test_shutdown_closes_idle_keepalive_connections_promptly(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), timeouts={"drain": "30s"}))
    with gh.conn() as c:
        c.send(request_bytes("GET", "/x"))
        assert c.read_response().status == 200
        gh.signal(signal.SIGTERM)
        assert c.read_to_close() == b""
    assert gh.proc.wait(timeout=20) == 0


def test_drain_deadline_cuts_stuck_requests(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("echo", echo), timeouts={"drain": "300ms"}))
    with gh.conn(timeout=30) as c:
        c.send(request_bytes("GET", "/stuck", headers=[("x-echo-wait", "never")]))
        wait_until(lambda: echo.request_count() == 1, message="the stuck request upstream")
        gh.signal(signal.SIGTERM)
        assert gh.proc.wait(timeout=20) == 0
        data = c.read_to_close()
    assert not data.startswith(b"HTTP/1.1 200"), data[:200]
