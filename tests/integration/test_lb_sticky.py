"""Session persistence with a gateway-issued cookie, weighted distribution, per-host metrics."""
import random
import re

from support import RawConn, cluster, request_bytes, simple_config, wait_until


def get(gh, path="/", cookie=None, conn=None):
    headers = [("cookie", cookie)] if cookie else []
    c = conn or RawConn(gh.port)
    try:
        c.send(request_bytes("GET", path, headers=headers))
        return c.read_response()
    finally:
        if conn is None:
            c.close()


def sticky_value(resp, name="gh_sticky"):
    v = resp.header("set-cookie")
    if v is None:
        return None
    m = re.match(name + r"=([^;]*)", v)
    assert m, v
    return m.group(1)


def sticky_cluster(*ups, **extra):
    return cluster("s", *ups, sticky={"cookie": "gh_sticky", "key": "test-secret-0123456789"},
                   **extra)


def test_same_client_same_host_across_1000_requests(gatehouse, echo_factory):
    ups = [echo_factory(f"e{i}") for i in range(3)]
    gh = gatehouse(simple_config(sticky_cluster(*ups)))
    first = get(gh, "/login")
    assert first.status == 200
    value = sticky_value(first)
    assert value, "no sticky cookie issued"
    attrs = first.header("set-cookie")
    assert "Path=/" in attrs and "HttpOnly" in attrs and "SameSite=Lax" in attrs, attrs
    # The host's address is not readable in the cookie.
    for u in ups:
        assert str(u.port) not in value
    home = first.json()["upstream"]
    seen = set()
    for batch in range(10):  # new connections: both workers see the cookie
        with gh.conn() as c:
            for i in range(100):
                r = get(gh, f"/p{batch}-{i}", cookie=f"a=1; gh_sticky={value}; b=2", conn=c)
                assert r.status == 200
                seen.add(r.json()["upstream"])
                assert r.header("set-cookie") is None, "a valid cookie is not replaced"
    assert seen == {home}
    # Without the cookie, round robin spreads requests again.
    assert len({get(gh, f"/n{i}").json()["upstream"] for i in range(6)}) == 3


def test_session_moves_when_its_host_dies(gatehouse, echo_factory):
    ups = [echo_factory(f"e{i}") for i in range(3)]
    gh = gatehouse(simple_config(sticky_cluster(
        *ups, health_check={"type": "tcp", "interval": "100ms", "timeout": "100ms",
                            "unhealthy_threshold": 1, "healthy_threshold": 1})))
    first = get(gh, "/")
    value = sticky_value(first)
    home = first.json()["upstream"]
    next(u for u in ups if u.name == home).stop()

    def moved():
        r = get(gh, "/", cookie=f"gh_sticky={value}")
        if r.status == 200 and r.json()["upstream"] != home:
            return r
        return None
    r = wait_until(moved, message="the session to move off the dead host")
    new_value = sticky_value(r)
    assert new_value, "a moved session gets a new cookie"
    new_home = r.json()["upstream"]
    for i in range(50):
        r = get(gh, f"/x{i}", cookie=f"gh_sticky={new_value}")
        assert r.status == 200 and r.json()["upstream"] == new_home


def test_forged_or_tampered_cookie_is_ignored(gatehouse, echo_factory):
    ups = [echo_factory(f"e{i}") for i in range(3)]
    gh = gatehouse(simple_config(sticky_cluster(*ups)), workers=1)
    value = sticky_value(get(gh, "/"))
    tampered = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    for bad in (tampered, "127.0.0.1:%d" % ups[0].port, "x" * 40, ""):
        hosts = set()
        with gh.conn() as c:
            for i in range(9):
                r = get(gh, f"/f{i}", cookie=f"gh_sticky={bad}", conn=c)
                assert r.status == 200
                assert sticky_value(r), f"cookie {bad!r} was accepted"
                hosts.add(r.json()["upstream"])
        assert len(hosts) == 3, f"cookie {bad!r} pinned requests to {hosts}"
    # A cookie issued under another key (another deployment) is not honoured either.
    gh2 = gatehouse(simple_config(cluster("s", *ups, sticky={"key": "another-secret-0123456"})),
                    workers=1)
    r = get(gh2, "/", cookie=f"gh_sticky={value}")
    assert sticky_value(r) and sticky_value(r) != value


def test_weighted_random_within_chi_square_bound(gatehouse, echo_factory):
    ups = [echo_factory(f"e{i}") for i in range(3)]
    weights = [1, 2, 5]
    gh = gatehouse(simple_config({"name": "w", "lb": "random", "endpoints": [
        {"host": "127.0.0.1", "port": u.port, "weight": w} for u, w in zip(ups, weights)]}))
    n = 800
    with gh.conn() as c:
        for i in range(n):
            assert get(gh, f"/r{i}", conn=c).status == 200
    counts = [u.request_count() for u in ups]
    assert sum(counts) == n
    expected = [n * w / sum(weights) for w in weights]
    chi = sum((o - e) ** 2 / e for o, e in zip(counts, expected))
    assert chi < 13.816, f"chi-square {chi:.1f} (df 2, p=0.001) for {counts} vs {expected}"


def test_per_host_metrics(gatehouse, echo, echo2):
    gh = gatehouse(simple_config(cluster("m", echo, echo2)), workers=1)
    for i in range(10):
        assert get(gh, f"/m{i}").status == 200
    m = wait_until(lambda: (lambda m: m if m.total("gatehouse_upstream_host_selected_total") >= 10
                            else None)(gh.metrics()), message="selection counts")
    for u in (echo, echo2):
        labels = {"cluster": "m", "host": u.endpoint}
        assert m.value("gatehouse_upstream_host_selected_total", **labels) == 5
        assert m.value("gatehouse_upstream_host_active_requests", **labels) == 0
        assert m.value("gatehouse_upstream_host_failures_total", **labels) == 0
        assert m.value("gatehouse_upstream_host_healthy", **labels) == 1
        assert m.value("gatehouse_upstream_host_ejections_total", **labels) == 0


def test_hash_persistence_on_cookie_still_works(gatehouse, echo_factory):
    ups = [echo_factory(f"e{i}") for i in range(3)]
    gh = gatehouse(simple_config(cluster("h", *ups, lb="maglev",
                                         lb_options={"hash_key": {"cookie": "session"}})))
    rnd = random.Random(7)
    for _ in range(10):
        sid = "%016x" % rnd.getrandbits(64)
        got = {get(gh, "/", cookie=f"session={sid}").json()["upstream"] for _ in range(5)}
        assert len(got) == 1


def test_sticky_session_over_http2(gatehouse, echo_factory):
    import httpx
    ups = [echo_factory(f"e{i}") for i in range(3)]
    gh = gatehouse(simple_config(sticky_cluster(*ups)))
    with httpx.Client(http1=False, http2=True, timeout=15) as c:  # h2c; keeps cookies
        first = c.get(f"{gh.url}/")
        assert first.http_version == "HTTP/2" and first.status_code == 200
        assert "gh_sticky" in first.headers.get("set-cookie", "")
        home = first.json()["upstream"]
        for i in range(30):
            r = c.get(f"{gh.url}/p{i}")
            assert r.json()["upstream"] == home
            assert "set-cookie" not in r.headers


def test_sticky_session_to_h2c_upstreams(gatehouse, echo_factory):
    # Two gatehouses serve as HTTP/2 (h2c) upstreams, each in front of its own echo.
    ups = [echo_factory(f"e{i}") for i in range(2)]
    fronts = [gatehouse(simple_config(cluster("up", u)), name=f"b{i}", workers=1)
              for i, u in enumerate(ups)]
    gh = gatehouse(simple_config({
        "name": "s", "protocol": "h2c", "endpoints": [f"127.0.0.1:{f.port}" for f in fronts],
        "sticky": {"key": "test-secret-0123456789"}}), name="a")
    first = get(gh, "/")
    assert first.status == 200
    value = sticky_value(first)
    assert value, "no sticky cookie on the h2c upstream path"
    home = first.json()["upstream"]
    for i in range(40):
        r = get(gh, f"/h{i}", cookie=f"gh_sticky={value}")
        assert r.status == 200 and r.json()["upstream"] == home
