"""TCP listeners (mode: tcp): real redis-server, redis-cli and redis-benchmark through the
proxy, failover, PING/PONG health checks, half-close, backpressure, limits, idle timeout, IP
rules, metrics, the access log, and reloads under 100 streaming connections."""
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from support import RedisServer, resp_command, wait_until
from support.l4 import endpoints, tcp_config, tcp_port
from support.tcp import (BulkSender, echo_handler, pattern, read_until_closed, recv_all,
                         reply_after_eof)

REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCH = shutil.which("redis-benchmark")
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None or REDIS_CLI is None,
                                 reason="redis-server / redis-cli are not installed")


def redis_cli(port, *args, timeout=10):
    r = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
                       capture_output=True, timeout=timeout, text=True)
    return r.returncode, r.stdout.strip()


@pytest.fixture
def redis_pair(tmp_path):
    servers = [RedisServer(tmp_path / f"redis{i}").start() for i in range(2)]
    for i, s in enumerate(servers):
        assert resp_command(s.port, "SET", "server", f"r{i}") == b"+OK"
    yield servers
    for s in servers:
        s.stop()


def redis_cluster(servers, **extra):
    c = {"name": "redis", "lb": "round_robin", "endpoints": endpoints(*(s.port for s in servers)),
         "health_check": {"type": "tcp", "interval": "200ms", "timeout": "150ms",
                          "send": "PING\r\n", "expect": "+PONG",
                          "healthy_threshold": 1, "unhealthy_threshold": 1}}
    c.update(extra)
    return c


@needs_redis
def test_redis_cli_and_benchmark_through_tcp_listener(gatehouse, redis_pair):
    g = gatehouse(tcp_config(redis_cluster(redis_pair)))
    port = tcp_port(g)
    assert redis_cli(port, "PING") == (0, "PONG")
    # Round robin over two servers that hold different values: both answer through one port.
    seen = {redis_cli(port, "GET", "server")[1] for _ in range(6)}
    assert seen == {"r0", "r1"}
    if REDIS_BENCH:
        r = subprocess.run([REDIS_BENCH, "-h", "127.0.0.1", "-p", str(port), "-n", "2000",
                            "-c", "8", "-t", "ping,set,get", "-q"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("requests per second") >= 3, r.stdout
    m = g.metrics()
    assert m.value("gatehouse_tcp_connections_total", listener="tcp") >= 7
    assert m.value("gatehouse_tcp_upstream_connections_total", cluster="redis") >= 7
    assert m.value("gatehouse_tcp_bytes_received_total", listener="tcp") > 0
    line = g.wait_log(lambda e: e.get("kind") == "tcp" and e.get("close_reason") == "closed")
    assert line["listener"] == "tcp" and line["cluster"] == "redis"
    assert line["upstream"] in {f"127.0.0.1:{s.port}" for s in redis_pair}
    assert line["bytes_in"] > 0 and line["bytes_out"] > 0 and line["attempts"] == 1
    assert line["client"].startswith("127.0.0.1:")


@needs_redis
def test_failover_when_a_redis_is_killed(gatehouse, redis_pair):
    # No health check here: the connect retry alone must hide the dead host.
    cluster = {"name": "redis", "lb": "round_robin",
               "endpoints": endpoints(*(s.port for s in redis_pair))}
    g = gatehouse(tcp_config(cluster, {"connect_timeout": "2s", "connect_retries": 1}))
    port = tcp_port(g)
    dead = redis_pair[1]
    dead.proc.send_signal(signal.SIGKILL)
    dead.proc.wait(timeout=10)
    answers = [redis_cli(port, "GET", "server") for _ in range(20)]
    assert answers == [(0, "r0")] * 20
    m = g.metrics()
    assert m.value("gatehouse_tcp_upstream_connect_failures_total", cluster="redis") >= 1
    line = g.wait_log(lambda e: e.get("kind") == "tcp" and e.get("attempts") == 2)
    assert line["close_reason"] == "closed" and line["upstream"] == f"127.0.0.1:{redis_pair[0].port}"


@needs_redis
def test_ping_pong_health_check_takes_a_wrong_server_out(gatehouse, redis_pair, tcp_server):
    # Accepts and answers, but not +PONG: a TCP connect check would pass it, PING/PONG does not.
    liar = tcp_server(lambda conn: (conn.recv(100), conn.sendall(b"-ERR not redis\r\n")))
    cluster = redis_cluster(redis_pair[:1])
    cluster["endpoints"].append({"host": "127.0.0.1", "port": liar.port})
    g = gatehouse(tcp_config(cluster))
    wait_until(lambda: g.metrics().get_value("gatehouse_upstream_host_healthy", cluster="redis",
                                             host=f"127.0.0.1:{liar.port}") == 0,
               message="the liar to fail its PING/PONG check")
    assert g.metrics().value("gatehouse_upstream_host_healthy", cluster="redis",
                             host=f"127.0.0.1:{redis_pair[0].port}") == 1
    assert [redis_cli(tcp_port(g), "GET", "server") for _ in range(10)] == [(0, "r0")] * 10


@pytest.mark.parametrize("relay", ["splice", "copy"])
def test_half_close_client_still_gets_the_full_reply(gatehouse, tcp_server, relay):
    reply_size = 3 << 20
    up = tcp_server(reply_after_eof(reply_size))
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port)}, {"relay": relay}))
    request = pattern(b"request", 300_000)
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=15) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)  # FIN: the server answers only after it
        got = recv_all(s)
    assert got == pattern(request, reply_size)
    line = g.wait_log(lambda e: e.get("kind") == "tcp")
    assert line["close_reason"] == "closed"
    assert line["bytes_in"] == len(request) and line["bytes_out"] == reply_size


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("relay", ["splice", "copy"])
def test_backpressure_a_client_that_stops_reading(gatehouse, tcp_server, relay):
    total = 200 << 20
    sender = BulkSender(total)
    up = tcp_server(sender)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port)}, {"relay": relay}))
    before = rss_kib(g.pid)
    s = socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    first = s.recv(1000)
    assert first

    # Wait until the sender is stuck: its count stops moving for a while.
    def stalled():
        a = sender.sent
        time.sleep(0.3)
        return sender.sent == a and a < total
    wait_until(stalled, 30, message="the upstream to be blocked by backpressure")
    # Kernel socket buffers autotune (tcp_rmem's max is 32 MiB here, tcp_wmem's 4 MiB), so tens
    # of MiB may leave the sender; without backpressure all 200 MiB would, into gatehouse.
    assert sender.sent < 96 << 20, f"{sender.sent} bytes left the upstream with nobody reading"
    grown = rss_kib(g.pid) - before
    assert grown < 16 * 1024, f"gatehouse RSS grew by {grown} KiB while the client did not read"
    # Resume: everything arrives, in full.
    got = len(first)
    while got < total:
        chunk = s.recv(1 << 20)
        assert chunk, f"EOF after {got} of {total} bytes"
        got += len(chunk)
    assert got == total
    s.close()


def test_max_connections_refuses_at_once_and_counts(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port)},
                             {"max_connections": 2}))
    port = tcp_port(g)
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    for i, s in enumerate(held):
        s.sendall(b"hello %d" % i)
        assert s.recv(100) == b"hello %d" % i
    refused = socket.create_connection(("127.0.0.1", port), timeout=10)
    refused.settimeout(5)
    assert read_until_closed(refused) == b""  # closed at once, no byte
    refused.close()
    wait_until(lambda: g.metrics().get_value("gatehouse_tcp_closes_total", listener="tcp",
                                             reason="limit") == 1, message="the limit refusal")
    assert up.accepted == 2
    held[0].close()
    wait_until(lambda: g.metrics().value("gatehouse_tcp_connections_active", listener="tcp") == 1,
               message="one connection to close")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"again")
        assert s.recv(100) == b"again"
    held[1].close()


def test_idle_timeout_closes_a_silent_connection(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port)},
                             {"idle_timeout": "400ms"}))
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as busy, \
            socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as idle:
        start = time.monotonic()
        # The busy one talks every 100 ms for over a second: never idle for 400 ms.
        while time.monotonic() - start < 1.2:
            busy.sendall(b"ping")
            assert busy.recv(100) == b"ping"
            time.sleep(0.1)
        idle.settimeout(10)
        assert idle.recv(100) == b""
        busy.sendall(b"still")
        assert busy.recv(100) == b"still"
    line = g.wait_log(lambda e: e.get("close_reason") == "idle_timeout")
    assert line["duration_ms"] >= 400
    assert g.metrics().value("gatehouse_tcp_closes_total", listener="tcp",
                             reason="idle_timeout") == 1


def test_ip_deny_closes_before_connecting_upstream(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port)},
                             {"ip_restriction": {"deny": ["127.0.0.0/8"]}}))
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
        s.settimeout(5)
        try:
            s.sendall(b"hello")
            assert s.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            pass
    wait_until(lambda: g.metrics().get_value("gatehouse_tcp_closes_total", listener="tcp",
                                             reason="ip_denied") == 1, message="the refusal")
    assert up.accepted == 0
    assert g.wait_log(lambda e: e.get("kind") == "tcp")["close_reason"] == "ip_denied"


def stream_client(port, rounds_done, errors, stop):
    """Sends numbered 4 KiB blocks and checks each echo, until stop is set."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            i = 0
            while not stop.is_set() or i < 3:
                block = pattern(b"%d" % i, 4096)
                s.sendall(block)
                got = b""
                while len(got) < len(block):
                    chunk = s.recv(len(block) - len(got))
                    if not chunk:
                        raise AssertionError("EOF mid-stream")
                    got += chunk
                if got != block:
                    raise AssertionError("corrupted echo")
                i += 1
                rounds_done.append(1)
            s.shutdown(socket.SHUT_WR)
            if s.recv(10) != b"":
                raise AssertionError("bytes after the last echo")
    except Exception as e:  # noqa: BLE001 - every failure is reported by the test
        errors.append(repr(e))


def test_reload_while_100_connections_stream_zero_resets(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    up2 = tcp_server(echo_handler)
    config = tcp_config({"name": "up", "endpoints": endpoints(up.port)})
    g = gatehouse(config)
    port = tcp_port(g)
    rounds, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=stream_client, args=(port, rounds, errors, stop))
               for _ in range(100)]
    for t in threads:
        t.start()
    wait_until(lambda: up.accepted == 100 and len(rounds) >= 300, 60,
               message="100 streaming connections")
    # Reload 1: another host and other timeouts. Reload 2: the cluster renamed (the old one
    # is gone from the config). Old sessions keep their host and snapshot throughout.
    config2 = tcp_config({"name": "up", "endpoints": endpoints(up2.port)}, {"idle_timeout": "5m"})
    config3 = tcp_config({"name": "up-renamed", "endpoints": endpoints(up2.port)})
    for c in (config2, config3):
        g.write_config(c)
        assert g.reload() == "success"
        before = len(rounds)
        wait_until(lambda: len(rounds) >= before + 200, 60, message="streams to keep moving")
    stop.set()
    for t in threads:
        t.join(60)
    assert errors == []
    assert up.accepted == 100 and up2.accepted == 0
    # A client sees the FIN a moment before its session counts the close.
    wait_until(lambda: g.metrics().value("gatehouse_tcp_closes_total", listener="tcp",
                                         reason="closed") == 100, message="100 closes counted")
    m = g.metrics()
    for reason in ("client_error", "upstream_error", "drain_age"):
        assert m.value("gatehouse_tcp_closes_total", listener="tcp", reason=reason) == 0
    # New connections go to the new cluster.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"new")
        assert s.recv(10) == b"new"
    assert up2.accepted == 1


def test_removed_listener_closes_its_sessions_after_max_drain_age(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port)},
                             streams={"max_drain_age": "500ms"}))
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
        s.sendall(b"before")
        assert s.recv(100) == b"before"
        g.write_config({"clusters": [{"name": "up", "endpoints": endpoints(up.port)}],
                        "streams": {"max_drain_age": "500ms"}})
        assert g.reload() == "success"
        start = time.monotonic()
        s.sendall(b"after")  # still relayed during the drain age
        assert s.recv(100) == b"after"
        s.settimeout(10)
        assert s.recv(100) == b""
        assert time.monotonic() - start >= 0.3
    assert g.wait_log(lambda e: e.get("kind") == "tcp")["close_reason"] == "drain_age"


def test_outlier_detection_counts_connect_failures(gatehouse, tcp_server):
    good = tcp_server(echo_handler)
    gone = tcp_server(echo_handler)
    gone_port = gone.port
    gone.stop()  # refuses connections from now on
    cluster = {"name": "up", "lb": "round_robin", "endpoints": endpoints(good.port, gone_port),
               "outlier_detection": {"consecutive_failures": 2, "max_ejection_percent": 50,
                                     "base_ejection_time": "30s"}}
    g = gatehouse(tcp_config(cluster, {"connect_retries": 1}))
    for i in range(6):
        with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
            s.sendall(b"x%d" % i)
            assert s.recv(10) == b"x%d" % i
    m = g.metrics()
    assert m.value("gatehouse_upstream_host_ejected", cluster="up",
                   host=f"127.0.0.1:{gone_port}") == 1
    # Ejected: new connections no longer try it (the failure count stops growing).
    failures = m.value("gatehouse_tcp_upstream_connect_failures_total", cluster="up")
    assert failures >= 2
    for i in range(4):
        with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
            s.sendall(b"y")
            assert s.recv(10) == b"y"
    assert g.metrics().value("gatehouse_tcp_upstream_connect_failures_total",
                             cluster="up") == failures


def test_max_lifetime_closes_a_busy_connection(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port)},
                             {"max_lifetime": "600ms"}))
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 10:
            try:
                s.sendall(b"tick")
                if s.recv(100) == b"":
                    closed = True
                    break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            time.sleep(0.05)
        assert closed and time.monotonic() - start >= 0.5
    assert g.wait_log(lambda e: e.get("kind") == "tcp")["close_reason"] == "max_lifetime"


def test_every_host_down_closes_the_client_and_logs_the_attempts(gatehouse, tcp_server):
    ports = []
    for _ in range(2):
        s = tcp_server(echo_handler)
        ports.append(s.port)
        s.stop()
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(*ports)},
                             {"connect_retries": 3, "connect_timeout": "2s"}))
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
        s.settimeout(10)
        assert read_until_closed(s) == b""
    line = g.wait_log(lambda e: e.get("kind") == "tcp")
    assert line["close_reason"] == "connect_failed"
    assert line["attempts"] == 4 and line["upstream"] == ""
    assert g.metrics().value("gatehouse_tcp_upstream_connect_failures_total", cluster="up") == 4


def reset_after(n):
    """Waits for the client's first bytes (so the relay is up: a reset that beat the proxy's
    connect check would be a failed connect), sends n bytes, then closes with RST (SO_LINGER 0)."""
    def handle(conn):
        conn.recv(100)
        conn.sendall(b"r" * n)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    return handle


@pytest.mark.parametrize("relay", ["splice", "copy"])
def test_upstream_reset_reaches_the_client_as_a_reset(gatehouse, tcp_server, relay):
    up = tcp_server(reset_after(100_000))
    g = gatehouse(tcp_config({"name": "up", "endpoints": endpoints(up.port)}, {"relay": relay}))
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
        s.sendall(b"hello")
        with pytest.raises(ConnectionResetError):  # never a clean EOF: the reply is truncated
            while s.recv(65536):
                pass
    assert g.wait_log(lambda e: e.get("kind") == "tcp")["close_reason"] == "upstream_error"


def test_cluster_circuit_breaker_caps_tcp_connections(gatehouse, tcp_server):
    up = tcp_server(echo_handler)
    cluster = {"name": "up", "endpoints": endpoints(up.port),
               "circuit_breakers": {"max_connections": 1}}
    g = gatehouse(tcp_config(cluster))
    with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as first:
        first.sendall(b"one")
        assert first.recv(10) == b"one"
        with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as second:
            second.settimeout(5)
            assert read_until_closed(second) == b""
        wait_until(lambda: g.metrics().get_value("gatehouse_tcp_closes_total", listener="tcp",
                                                 reason="cluster_limit") == 1,
                   message="the cluster limit refusal")
        assert up.accepted == 1


def test_http_health_check_on_a_tcp_cluster(gatehouse, echo, tcp_server):
    # The raw echo server accepts TCP but does not speak HTTP: an http check fails it.
    raw = tcp_server(echo_handler)
    cluster = {"name": "web", "lb": "round_robin",
               "endpoints": [{"host": "127.0.0.1", "port": echo.port}] + endpoints(raw.port),
               "health_check": {"type": "http", "path": "/healthz", "interval": "200ms",
                                "timeout": "150ms", "unhealthy_threshold": 1}}
    g = gatehouse(tcp_config(cluster))
    wait_until(lambda: g.metrics().get_value("gatehouse_upstream_host_healthy", cluster="web",
                                             host=f"127.0.0.1:{raw.port}") == 0,
               message="the raw server to fail its HTTP check")
    # Round robin over two hosts, one of them unhealthy: every connection reaches the HTTP
    # server (the raw one would echo the request back instead of answering it).
    for _ in range(6):
        with socket.create_connection(("127.0.0.1", tcp_port(g)), timeout=10) as s:
            s.sendall(b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n")
            assert recv_all(s).startswith(b"HTTP/1.")
