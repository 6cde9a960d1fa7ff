"""Circuit breakers per cluster (max_requests, max_connections, max_pending_requests) and the
adaptive_concurrency policy. Concurrency is made deterministic with the echo upstream's
x-echo-wait gates: admitted requests are held at the upstream until the test releases them, so
exactly the excess is refused. Nothing waits with a sleep."""
from support import cluster, request_bytes, simple_config, wait_until

OVERFLOW = "gatehouse_cluster_breaker_overflow_total"
CURRENT = "gatehouse_cluster_breaker_current"
OPEN = "gatehouse_cluster_breaker_open"


def breaker_config(echo, connect_timeout="10s", **limits):
    return simple_config(cluster("api", echo, circuit_breakers=limits,
                                 connect_timeout=connect_timeout))


def metric(gh, family, **labels):
    return gh.metrics().value(family, **labels)


def send_held(gh, n, gate, path="/held", extra_headers=()):
    """Opens n connections, each sending one request the upstream holds until `gate`."""
    conns = []
    for i in range(n):
        c = gh.conn()
        c.send(request_bytes("GET", f"{path}/{i}",
                             headers=[("x-echo-wait", gate), *extra_headers]))
        conns.append(c)
    return conns


def read_all(conns):
    out = []
    for c in conns:
        out.append(c.read_response())
        c.close()
    return out


def assert_overflow_reply(r, limit):
    assert r.status == 503, (r.status, r.body)
    assert r.header("x-gatehouse-overflow") == limit
    body = r.json()
    assert body["error"] == f"upstream overflow: {limit}"
    assert body["status"] == 503 and body["request_id"]


def test_max_requests_refuses_exactly_the_excess(gatehouse, echo):
    n, k = 3, 2
    gh = gatehouse(breaker_config(echo, max_requests=n))
    conns = send_held(gh, n + k, "go")
    wait_until(lambda: echo.request_count() == n, message=f"{n} requests held upstream")
    wait_until(lambda: metric(gh, OVERFLOW, cluster="api", limit="max_requests") == k,
               message="the excess to be refused")
    m = gh.metrics()
    assert m.value(CURRENT, cluster="api", limit="max_requests") == n
    assert m.value(OPEN, cluster="api", limit="max_requests") == 1
    echo.release("go")
    replies = read_all(conns)
    refused = [r for r in replies if r.status == 503]
    assert len(refused) == k
    assert sum(r.status == 200 for r in replies) == n
    for r in refused:
        assert_overflow_reply(r, "max_requests")
    assert echo.request_count() == n  # the refused requests never reached the upstream
    # Recovered: nothing in flight, the breaker closed, new requests pass.
    wait_until(lambda: metric(gh, CURRENT, cluster="api", limit="max_requests") == 0,
               message="in-flight count back to 0")
    assert metric(gh, OPEN, cluster="api", limit="max_requests") == 0
    replies = read_all(send_held(gh, n, "go"))
    assert [r.status for r in replies] == [200] * n
    assert metric(gh, OVERFLOW, cluster="api", limit="max_requests") == k


def test_overflow_on_a_grpc_request_is_trailers_only(gatehouse, echo):
    gh = gatehouse(breaker_config(echo, max_requests=1))
    held = send_held(gh, 1, "go")
    wait_until(lambda: echo.request_count() == 1, message="one request held upstream")
    with gh.conn() as c:
        c.send(request_bytes("POST", "/pkg.Svc/Call", body=b"\x00\x00\x00\x00\x00",
                             headers=[("content-type", "application/grpc"), ("te", "trailers")]))
        r = c.read_response("POST")
    assert r.status == 200
    assert r.header("grpc-status") == "14"  # UNAVAILABLE
    assert "max_requests" in r.header("grpc-message")
    assert r.header("x-gatehouse-overflow") == "max_requests"
    echo.release("go")
    assert read_all(held)[0].status == 200


def test_max_connections_queues_up_to_max_pending(gatehouse, echo):
    gh = gatehouse(breaker_config(echo, max_connections=2, max_pending_requests=1))
    conns = send_held(gh, 4, "go")
    # Two requests hold the two connections; one waits as pending; the fourth is refused.
    wait_until(lambda: echo.request_count() == 2, message="two requests held upstream")
    wait_until(lambda: metric(gh, OVERFLOW, cluster="api", limit="max_pending_requests") == 1,
               message="the fourth request to be refused")
    m = gh.metrics()
    assert m.value(CURRENT, cluster="api", limit="max_connections") == 2
    assert m.value(CURRENT, cluster="api", limit="max_pending_requests") == 1
    assert m.value(OPEN, cluster="api", limit="max_connections") == 1
    assert m.value(OPEN, cluster="api", limit="max_pending_requests") == 1
    echo.release("go")
    replies = read_all(conns)
    assert sorted(r.status for r in replies) == [200, 200, 200, 503]
    assert_overflow_reply(next(r for r in replies if r.status == 503), "max_pending_requests")
    assert echo.request_count() == 3  # the pending one got a connection once one was free
    m = gh.metrics()
    assert m.value(CURRENT, cluster="api", limit="max_pending_requests") == 0
    assert m.value(CURRENT, cluster="api", limit="max_connections") <= 2
    assert m.value(OVERFLOW, cluster="api", limit="max_connections") == 0
    # Recovered: more requests pass (one at a time: a connection idle in another worker's
    # pool frees its slot only when that worker next looks).
    for i in range(3):
        assert read_all([_send(gh, f"/after/{i}")])[0].status == 200
    assert metric(gh, CURRENT, cluster="api", limit="max_connections") <= 2


def test_pending_request_times_out_as_max_connections(gatehouse, echo):
    gh = gatehouse(breaker_config(echo, connect_timeout="300ms", max_connections=1,
                                  max_pending_requests=5))
    held = send_held(gh, 1, "go")
    wait_until(lambda: echo.request_count() == 1, message="one request held upstream")
    with gh.conn() as c:
        c.send(request_bytes("GET", "/waits"))
        r = c.read_response()
    assert_overflow_reply(r, "max_connections")
    assert metric(gh, OVERFLOW, cluster="api", limit="max_connections") == 1
    echo.release("go")
    assert read_all(held)[0].status == 200


def test_reload_keeps_in_flight_counts(gatehouse, echo):
    gh = gatehouse(breaker_config(echo, max_requests=3))
    held = send_held(gh, 2, "go")
    wait_until(lambda: echo.request_count() == 2, message="two requests held upstream")
    # The new config's cap is 2: the two requests of the old snapshot still fill it.
    gh.write_config(breaker_config(echo, max_requests=2, max_connections=100))
    assert gh.reload() == "success"
    assert metric(gh, CURRENT, cluster="api", limit="max_requests") == 2
    with gh.conn() as c:
        c.send(request_bytes("GET", "/over"))
        assert_overflow_reply(c.read_response(), "max_requests")
    echo.release("go")
    assert [r.status for r in read_all(held)] == [200, 200]
    # Released into the same counters: back to exactly 0 (not negative, nothing leaked).
    wait_until(lambda: metric(gh, CURRENT, cluster="api", limit="max_requests") == 0,
               message="in-flight count back to 0 after the reload")
    m = gh.metrics()
    assert m.value(CURRENT, cluster="api", limit="max_pending_requests") == 0
    assert m.value(CURRENT, cluster="api", limit="max_connections") <= 2
    replies = read_all(send_held(gh, 2, "go"))
    assert [r.status for r in replies] == [200, 200]


def test_clusters_without_breakers_are_not_capped(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("api", echo)))
    assert read_all([_send(gh, "/plain")])[0].status == 200
    assert gh.metrics().get_value(CURRENT, cluster="api", limit="max_requests") is None


def adaptive_route(name, path, cluster_name, **opts):
    return {"name": name, "match": {"path_prefix": path}, "cluster": cluster_name,
            "policies": [{"name": "adaptive_concurrency", "config": {
                "name": name, "algorithm": "aimd", "latency_threshold": "500ms",
                "window": "10ms", "min_limit": 1, "initial_limit": 4, "max_limit": 8,
                "decrease_factor": "0.5", **opts}}]}


def test_adaptive_concurrency_limits_a_slow_upstream_only(gatehouse, echo_factory):
    slow, fast = echo_factory("slow"), echo_factory("fast")
    # The fast route starts at 8, so a round of 4 never meets the previous round's requests
    # still finishing (their slot is given back after the response is written).
    gh = gatehouse(simple_config(cluster("slow", slow), cluster("fast", fast), routes=[
        adaptive_route("slow", "/slow", "slow"),
        adaptive_route("fast", "/fast", "fast", initial_limit=8, max_limit=16)]))
    limit = "gatehouse_adaptive_concurrency_limit"
    assert metric(gh, limit, policy="slow") == 4
    # Each slow answer (1 s, above the 500 ms threshold) halves the limit: 4 -> 2 -> 1.
    for _ in range(4):
        if metric(gh, limit, policy="slow") == 1:
            break
        with gh.conn() as c:
            c.send(request_bytes("GET", "/slow/x", headers=[("x-echo-delay", "1")]))
            assert c.read_response(timeout=20).status == 200
    wait_until(lambda: metric(gh, limit, policy="slow") == 1, message="the limit to reach 1")
    before = slow.request_count()
    held = send_held(gh, 1, "go", path="/slow")
    wait_until(lambda: slow.request_count() == before + 1, message="the slow request to be held")
    with gh.conn() as c:
        c.send(request_bytes("GET", "/slow/over"))
        r = c.read_response()
    assert r.status == 503 and r.header("x-gatehouse-overflow") == "adaptive_concurrency"
    assert r.json()["request_id"]
    assert metric(gh, "gatehouse_adaptive_concurrency_rejected_total", policy="slow") == 1
    slow.release("go")
    assert read_all(held)[0].status == 200
    # The fast upstream: four at a time (the initial limit), never refused.
    for round_ in range(3):
        replies = read_all([_send(gh, f"/fast/{round_}/{i}") for i in range(4)])
        assert [r.status for r in replies] == [200] * 4
    m = gh.metrics()
    assert m.value("gatehouse_adaptive_concurrency_rejected_total", policy="fast") == 0
    assert m.value(limit, policy="fast") >= 8
    # A slot is given back just after the response is written: poll for it.
    in_flight = "gatehouse_adaptive_concurrency_in_flight"
    wait_until(lambda: metric(gh, in_flight, policy="fast") == 0
               and metric(gh, in_flight, policy="slow") == 0, message="no request in flight")


def _send(gh, path):
    c = gh.conn()
    c.send(request_bytes("GET", path))
    return c


def test_adaptive_concurrency_config_errors_name_the_option(gatehouse, echo):
    cfg = simple_config(cluster("api", echo), routes=[
        adaptive_route("r", "/", "api", decrease_factor="2")])
    gh = gatehouse(simple_config(cluster("api", echo)))
    gh.write_config(cfg)
    assert gh.reload() == "failure"
    assert "decrease_factor" in gh.stderr()


def test_breakers_on_an_http2_upstream(gatehouse, echo):
    # Gatehouse B (h2c downstream) is A's HTTP/2 upstream: many streams share one connection.
    b = gatehouse(simple_config(cluster("up", echo)), name="b")
    a = gatehouse(simple_config({
        "name": "h2", "protocol": "h2c", "endpoints": [f"127.0.0.1:{b.port}"],
        "circuit_breakers": {"max_requests": 2, "max_connections": 1}}), workers=1, name="a")
    held = send_held(a, 2, "go")
    wait_until(lambda: echo.request_count() == 2, message="two requests held upstream")
    with a.conn() as c:
        c.send(request_bytes("GET", "/over"))
        assert_overflow_reply(c.read_response(), "max_requests")
    m = a.metrics()
    assert m.value(CURRENT, cluster="h2", limit="max_connections") == 1  # both on one connection
    assert m.value(CURRENT, cluster="h2", limit="max_requests") == 2
    echo.release("go")
    assert [r.status for r in read_all(held)] == [200, 200]
    wait_until(lambda: metric(a, CURRENT, cluster="h2", limit="max_requests") == 0,
               message="in-flight count back to 0")
    assert read_all([_send(a, "/again")])[0].status == 200
    assert metric(a, CURRENT, cluster="h2", limit="max_connections") == 1


def test_adaptive_concurrency_gradient_learns_min_rtt_then_backs_off(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("api", echo), routes=[{
        "name": "grad", "match": {"path_prefix": "/"}, "cluster": "api",
        "policies": [{"name": "adaptive_concurrency", "config": {
            "name": "grad", "min_rtt_samples": 2, "window": "10ms", "min_limit": 1,
            "initial_limit": 4, "max_limit": 8}}]}]))
    limit = "gatehouse_adaptive_concurrency_limit"
    assert metric(gh, limit, policy="grad") == 1  # pinned while the min RTT is measured
    for i in range(2):
        # The limit is 1 and an exchange ends (leaves in_flight) just after its client has the
        # response: wait for that before the next request.
        wait_until(lambda: metric(gh, "gatehouse_adaptive_concurrency_in_flight",
                                  policy="grad") == 0, message="no request in flight")
        assert read_all([_send(gh, f"/fast/{i}")])[0].status == 200
    # A sample is taken when the exchange ends, just after the client has its response.
    wait_until(lambda: metric(gh, "gatehouse_adaptive_concurrency_min_rtt_seconds",
                              policy="grad") > 0, message="the min RTT to be measured")
    wait_until(lambda: metric(gh, limit, policy="grad") == 4, message="the limit to open")
    # Answers far slower than the min RTT: gradient 0.5, so 4 -> 3 -> 2 (headroom keeps 2).
    for i in range(5):
        if metric(gh, limit, policy="grad") == 2:
            break
        with gh.conn() as c:
            c.send(request_bytes("GET", f"/slow/{i}", headers=[("x-echo-delay", "1")]))
            assert c.read_response(timeout=20).status == 200
    wait_until(lambda: metric(gh, limit, policy="grad") == 2, message="the limit to reach 2")
    before = echo.request_count()
    held = send_held(gh, 2, "go")
    wait_until(lambda: echo.request_count() == before + 2, message="two requests held")
    with gh.conn() as c:
        c.send(request_bytes("GET", "/over"))
        r = c.read_response()
    assert r.status == 503 and r.header("x-gatehouse-overflow") == "adaptive_concurrency"
    echo.release("go")
    assert [r.status for r in read_all(held)] == [200, 200]

