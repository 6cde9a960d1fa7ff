"""Load-balancing algorithms end to end, on two echo upstreams."""
import threading

import pytest

from support import RawConn, cluster, request_bytes, simple_config, wait_until


def upstream_of(gh, path="/", headers=(), conn=None):
    c = conn or RawConn(gh.port)
    try:
        c.send(request_bytes("GET", path, headers=list(headers)))
        r = c.read_response()
        assert r.status == 200, r.status
        return r.json()["upstream"]
    finally:
        if conn is None:
            c.close()


def test_weighted_round_robin_follows_weights(gatehouse, echo, echo2):
    gh = gatehouse(simple_config({"name": "w", "endpoints": [
        {"host": "127.0.0.1", "port": echo.port, "weight": 2},
        {"host": "127.0.0.1", "port": echo2.port, "weight": 1}]}))
    with gh.conn() as c:  # one connection: one worker's LB state
        seen = [upstream_of(gh, f"/w{i}", conn=c) for i in range(30)]
    assert seen.count("echo-a") == 20 and seen.count("echo-b") == 10, seen


@pytest.mark.parametrize("lb", ["ring_hash", "maglev"])
def test_hash_by_header_is_sticky_across_connections_and_workers(gatehouse, echo, echo2, lb):
    gh = gatehouse(simple_config(cluster("h", echo, echo2, lb=lb,
                                         lb_options={"hash_key": {"header": "x-user-id"}})))
    placement = {}
    for user in range(20):
        got = {upstream_of(gh, "/h", headers=[("X-User-ID", f"user-{user}")]) for _ in range(4)}
        assert len(got) == 1, f"user-{user} went to {got}"
        placement[user] = got.pop()
    assert set(placement.values()) == {"echo-a", "echo-b"}, "20 keys all hashed to one host"
    # Requests without the key fall back (round robin by default) and still succeed.
    assert {upstream_of(gh, "/nokey") for _ in range(6)} <= {"echo-a", "echo-b"}


def test_ip_hash_keeps_one_client_on_one_host(gatehouse, echo, echo2):
    gh = gatehouse(simple_config(cluster("ip", echo, echo2, lb="ip_hash")))
    assert len({upstream_of(gh, f"/i{i}") for i in range(10)}) == 1


def test_least_conn_avoids_the_busy_host(gatehouse, echo, echo2):
    gh = gatehouse(simple_config(cluster("lc", echo, echo2, lb="least_conn")), workers=1)
    result = {}

    def slow():
        with gh.conn(timeout=30) as c:
            c.send(request_bytes("GET", "/slow", headers=[("x-echo-wait", "hold")]))
            result["upstream"] = c.read_response(timeout=30).json()["upstream"]

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    try:
        wait_until(lambda: echo.request_count() + echo2.request_count() == 1,
                   message="the slow request upstream")
        busy = "echo-a" if echo.request_count() else "echo-b"
        seen = [upstream_of(gh, f"/q{i}") for i in range(6)]
        assert busy not in seen, f"least_conn sent requests to the busy host {busy}: {seen}"
    finally:
        echo.release("hold")
        echo2.release("hold")
        t.join(timeout=30)
    assert result.get("upstream") == busy
