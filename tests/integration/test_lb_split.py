"""Traffic splitting: weighted clusters, canary rules, request mirroring."""
import socket
import time

from support import RawConn, cluster, request_bytes, simple_config, wait_until


def send(conn, path="/", headers=(), method="GET", body=b""):
    conn.send(request_bytes(method, path, headers=list(headers), body=body))
    return conn.read_response(method=method)


def split_config(a, b, wa, wb, **route_extra):
    return simple_config(cluster("a", a), cluster("b", b), routes=[
        {"name": "split", "match": {"path_prefix": "/"},
         "clusters": [{"name": "a", "weight": wa}, {"name": "b", "weight": wb}], **route_extra}])


def test_weighted_split_ratio(gatehouse, echo, echo2):
    gh = gatehouse(split_config(echo, echo2, 90, 10))
    n = 1000
    with gh.conn() as c:
        for i in range(n):
            assert send(c, f"/s{i}").status == 200
    a, b = echo.request_count(), echo2.request_count()
    assert a + b == n
    chi = (a - 900) ** 2 / 900 + (b - 100) ** 2 / 100
    assert chi < 10.828, f"chi-square {chi:.1f} (df 1, p=0.001): a={a} b={b}"


def test_reload_changes_weights_without_dropping_connections(gatehouse, echo, echo2):
    gh = gatehouse(split_config(echo, echo2, 100, 0))
    with gh.conn() as c:
        for i in range(20):
            assert send(c, f"/x{i}").json()["upstream"] == "echo-a"
        gh.write_config(split_config(echo, echo2, 0, 100))
        assert gh.reload() == "success"
        # The same client connection goes on, now to the other cluster.
        seen = [send(c, f"/y{i}").json()["upstream"] for i in range(20)]
        assert seen == ["echo-b"] * 20


def test_header_and_cookie_canary(gatehouse, echo, echo2):
    gh = gatehouse(split_config(echo, echo2, 1, 0, canary=[
        {"header": "X-Canary", "value": "1", "cluster": "b"},
        {"cookie": "beta", "cluster": "b"}]))
    with gh.conn() as c:
        for i in range(10):
            assert send(c, f"/p{i}").json()["upstream"] == "echo-a"
            assert send(c, f"/c{i}", headers=[("x-canary", "1")]).json()["upstream"] == "echo-b"
            # Another value is not the canary.
            assert send(c, f"/o{i}", headers=[("x-canary", "0")]).json()["upstream"] == "echo-a"
            assert send(c, f"/k{i}", headers=[("cookie", "x=1; beta=yes")]).json()[
                "upstream"] == "echo-b"


def test_canary_on_a_single_cluster_route(gatehouse, echo, echo2):
    gh = gatehouse(simple_config(cluster("a", echo), cluster("b", echo2), routes=[
        {"match": {"path_prefix": "/"}, "cluster": "a",
         "canary": [{"header": "x-beta", "cluster": "b"}]}]))
    with gh.conn() as c:
        assert send(c, "/").json()["upstream"] == "echo-a"
        assert send(c, "/", headers=[("x-beta", "anything")]).json()["upstream"] == "echo-b"


def test_mirror_copies_requests_without_changing_responses(gatehouse, echo, echo2):
    gh = gatehouse(simple_config(cluster("main", echo), cluster("shadow", echo2), routes=[
        {"match": {"path_prefix": "/"}, "cluster": "main",
         "mirror": {"cluster": "shadow", "percent": 100}}]))
    with gh.conn() as c:
        for i in range(10):
            r = send(c, f"/g{i}?q={i}", headers=[("x-echo-status", "201")])
            assert r.status == 201 and r.json()["upstream"] == "echo-a"
        for i in range(5):
            r = send(c, f"/post{i}", method="POST", body=b"x" * (1000 + i))
            assert r.status == 200 and r.json()["upstream"] == "echo-a"
            assert r.json()["body_length"] == 1000 + i
    wait_until(lambda: echo2.request_count() >= 15, message="the shadow to get every copy")
    paths = sorted(r["path"] for r in echo2.requests)
    assert paths == sorted([f"/g{i}?q={i}" for i in range(10)] + [f"/post{i}" for i in range(5)])
    posts = [r for r in echo2.requests if r["method"] == "POST"]
    assert sorted(r["body_length"] for r in posts) == [1000, 1001, 1002, 1003, 1004]
    assert all(dict(r["headers"]).get("x-gatehouse-mirror") == "1" for r in echo2.requests)
    assert echo.request_count() == 15
    m = wait_until(lambda: (lambda m: m if m.value("gatehouse_mirror_requests_total", route="default/0",
                                                   cluster="shadow", result="ok") == 15 else None)(
        gh.metrics()), message="mirror ok count")
    assert m.value("gatehouse_mirror_requests_total", route="default/0", cluster="shadow",
                   result="failed") == 0


def test_mirror_to_a_dead_or_silent_cluster_does_not_delay_the_client(gatehouse, echo):
    # Accepts connections (backlog) and never answers: every copy times out.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)
    try:
        port = silent.getsockname()[1]
        gh = gatehouse(simple_config(
            cluster("main", echo),
            {"name": "shadow", "endpoints": [f"127.0.0.1:{port}"], "response_timeout": "300ms"},
            routes=[{"name": "r", "match": {"path_prefix": "/"}, "cluster": "main",
                     "mirror": {"cluster": "shadow", "percent": 100, "max_body_bytes": 0}}]))
        with gh.conn() as c:
            t0 = time.monotonic()
            for i in range(20):
                r = send(c, f"/d{i}")
                assert r.status == 200 and r.json()["upstream"] == "echo-a"
            # 20 copies that each hang 300 ms would take 6 s if the client waited for them.
            assert time.monotonic() - t0 < 3.0
            # max_body_bytes 0: a request with a body is not copied (counted as skipped).
            assert send(c, "/body", method="POST", body=b"abc").status == 200
        wait_until(lambda: (lambda m: m.value("gatehouse_mirror_requests_total", route="r",
                                              cluster="shadow", result="failed") == 20 and
                            m.value("gatehouse_mirror_requests_total", route="r",
                                    cluster="shadow", result="skipped") == 1)(gh.metrics()),
                   message="20 failed copies and 1 skipped")
    finally:
        silent.close()


def test_split_config_errors(gatehouse, echo, tmp_path):
    from support import GATEHOUSE_BIN
    import subprocess
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"""clusters: [{{name: a, endpoints: ["{echo.endpoint}"]}}]
routes:
  - match: {{path_prefix: /}}
    clusters: [{{name: a, weight: 1}}, {{name: nope, weight: 1}}]
    mirror: {{cluster: a, percent: 150}}
    canary: [{{header: x, cookie: y, cluster: a}}]
""")
    r = subprocess.run([GATEHOUSE_BIN, "validate", str(bad)], capture_output=True, text=True,
                       timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "routes[0].clusters[1].name: unknown cluster 'nope'" in out, out
    assert "routes[0].mirror.percent" in out, out
    assert "exactly one of 'header' and 'cookie'" in out, out
