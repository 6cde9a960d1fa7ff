"""Zero-downtime binary upgrade (issue #17, item 3): `gatehouse upgrade` (SIGUSR2) starts the
successor, which takes over the listening sockets (HTTP, TCP, admin) through SCM_RIGHTS; the old
process drains. Under 16 HTTP/1.1 keep-alive loops, an h2 loop, WebSockets and a TCP session: no
request fails, no connection is refused, each WebSocket is served by the old process until its
drain closes it. A successor that cannot start leaves the old process serving.

The "new" binary is the same file (GATEHOUSE_BIN): what is tested is the handover, not the code.
Clients retry only what HTTP lets any client retry without knowing whether it was processed: an
idempotent request on a *reused* HTTP/1.1 connection that closed before any byte of a response
(RFC 9112, 9.3.1), and an h2 stream above the GOAWAY's last stream id (RFC 9113, 6.8). Those
retries are counted and reported; everything else is a failure."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import pytest

from support import GATEHOUSE_BIN, IO_TIMEOUT, START_TIMEOUT, cluster, http_get, wait_until
from support.tcp import echo_handler
from support.udp import UdpEchoServer

HTTP1_LOOPS = 16
WEBSOCKETS = 50
MAX_REQUESTS = 200_000  # per loop: a bound, never reached in practice


def upgrade_config(echo, ws, tcp, **extra):
    c = {
        "clusters": [cluster("echo", echo), cluster("ws", ws), cluster("tcp", f"127.0.0.1:{tcp.port}")],
        "routes": [{"name": "ws", "match": {"path_prefix": "/ws"}, "cluster": "ws"},
                   {"name": "all", "match": {"path_prefix": "/"}, "cluster": "echo"}],
        "listeners": [
            {"name": "main", "address": "127.0.0.1", "port": "@main"},
            {"name": "tcp", "address": "127.0.0.1", "port": "@tcp", "mode": "tcp",
             "tcp": {"cluster": "tcp"}},
        ],
        # The old process serves its streams up to 5 s after the switch, then closes them.
        "streams": {"max_drain_age": "5s"},
        "timeouts": {"drain": "1s"},
    }
    c.update(extra)
    return c


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_pid(path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def run_upgrade(pid_file, *args, timeout=START_TIMEOUT * 3):
    return subprocess.run([GATEHOUSE_BIN, "upgrade", "--pid-file", str(pid_file),
                           "--timeout", str(int(timeout)), *args],
                          capture_output=True, text=True, timeout=timeout + IO_TIMEOUT)


def stop_successor(pid: int):
    """The successor is not our child (the old process started it): stop it by its pid."""
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), START_TIMEOUT, message=f"process {pid} to exit")


class Loop(threading.Thread):
    """Requests in a loop until stopped; counts successes, allowed retries and failures."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.ok = 0
        self.retried = 0
        self.failures: list[str] = []

    def run(self):
        try:
            self.loop()
        except Exception as e:  # noqa: BLE001 - reported as a failure by the test
            self.failures.append(f"loop died: {e!r}")


class Http1Loop(Loop):
    def loop(self):
        conn, reused = None, False
        for _ in range(MAX_REQUESTS):
            if self.stop.is_set():
                break
            if conn is None:
                conn, reused = http.client.HTTPConnection("127.0.0.1", self.port,
                                                          timeout=IO_TIMEOUT), False
            try:
                conn.request("GET", "/load", headers={"Host": "gh.test"})
                r = conn.getresponse()
                body = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                conn = None
                if reused:  # closed by the server between requests: retry, as clients do
                    self.retried += 1
                else:
                    self.failures.append(f"fresh connection: {e!r}")
                continue
            except OSError as e:
                conn.close()
                conn = None
                self.failures.append(repr(e))
                continue
            if r.status != 200 or not body:
                self.failures.append(f"status {r.status}")
            else:
                self.ok += 1
            reused = True
            if r.will_close:
                conn.close()
                conn = None


class GracefulH2Connection(h2.connection.H2Connection):
    """python-h2 closes its state machine on any GOAWAY, and then refuses the HEADERS of the
    streams the GOAWAY lets finish (RFC 9113, 6.8): report the GOAWAY, keep the state open."""

    def _receive_goaway_frame(self, frame):
        ev = h2.events.ConnectionTerminated()
        ev.error_code = frame.error_code
        ev.last_stream_id = frame.last_stream_id
        ev.additional_data = frame.additional_data or None
        return [], [ev]


class H2Loop(Loop):
    """One stream at a time over h2c (prior knowledge), reconnecting after a GOAWAY."""

    def loop(self):
        sock = conn = None
        for _ in range(MAX_REQUESTS):
            if self.stop.is_set():
                break
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)
                conn = GracefulH2Connection(h2.config.H2Configuration(client_side=True))
                conn.initiate_connection()
                sock.sendall(conn.data_to_send())
                last_stream = None
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "GET"), (":path", "/h2"), (":scheme", "http"),
                                    (":authority", "gh.test")], end_stream=True)
            sock.sendall(conn.data_to_send())
            status, done, outcome = None, False, None
            while not done:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    break
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                        status = dict(ev.headers).get(b":status")
                    elif isinstance(ev, h2.events.DataReceived):
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                        done = True
                    elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                        done, outcome = True, f"stream reset {ev.error_code}"
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        last_stream = ev.last_stream_id
                        if sid > last_stream:
                            done, outcome = True, "refused"
                out = conn.data_to_send()
                if out:
                    try:
                        sock.sendall(out)
                    except OSError:
                        pass
            if done and outcome is None and status == b"200":
                self.ok += 1
            elif outcome == "refused" or (not done and last_stream is not None and sid > last_stream):
                self.retried += 1  # never processed: safe to send again
            else:
                self.failures.append(outcome or f"h2 stream {sid}: status {status}, done {done}")
            if not done or last_stream is not None:
                sock.close()
                sock = None


def progress(loops):
    return [lp.ok for lp in loops]


def wait_progress(loops, before, n=5):
    try:
        wait_until(lambda: all(lp.ok >= b + n for lp, b in zip(loops, before)), IO_TIMEOUT * 2,
                   message=f"every load loop to make {n} more requests")
    except AssertionError:
        state = [(type(lp).__name__, b, lp.ok, lp.retried, lp.failures[:3], lp.is_alive())
                 for lp, b in zip(loops, before)]
        raise AssertionError(f"load loops stalled: {state}")


@pytest.fixture
def tcp_echo(tcp_server):
    return tcp_server(echo_handler)


def test_upgrade_under_load_fails_no_request(gatehouse, echo, ws_upstream, clients, tcp_echo,
                                             tmp_path):
    pid_file = tmp_path / "gatehouse.pid"
    g = gatehouse(upgrade_config(echo, ws_upstream, tcp_echo), workers=2,
                  extra_args=["--pid-file", str(pid_file)])
    wait_until(lambda: read_pid(pid_file) == g.pid, message="the pid file")
    tcp_port = g.extra_port("tcp")

    sockets = [clients.open(f"ws://127.0.0.1:{g.port}/ws") for _ in range(WEBSOCKETS)]
    for i, ws in enumerate(sockets):
        assert clients.echo(ws, f"before {i}") == f"before {i}"
    relay = socket.create_connection(("127.0.0.1", tcp_port), timeout=IO_TIMEOUT)
    relay.sendall(b"before")
    assert relay.recv(100) == b"before"

    stop = threading.Event()
    loops = [Http1Loop(g.port, stop) for _ in range(HTTP1_LOOPS)] + [H2Loop(g.port, stop)]
    for lp in loops:
        lp.start()
    try:
        wait_progress(loops, [0] * len(loops))
        before = progress(loops)
        r = run_upgrade(pid_file)
        assert r.returncode == 0, r.stdout + r.stderr
        new_pid = read_pid(pid_file)
        assert new_pid not in (0, g.pid) and alive(new_pid)

        # The old process still serves what it had: every WebSocket, the TCP session.
        assert g.proc.poll() is None
        for i, ws in enumerate(sockets):
            assert clients.echo(ws, f"after {i}") == f"after {i}"
        relay.sendall(b"after")
        assert relay.recv(100) == b"after"
        wait_progress(loops, before)
        # New connections of every kind go to the successor.
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=IO_TIMEOUT) as s2:
            s2.sendall(b"new")
            assert s2.recv(100) == b"new"
        assert http_get(g.admin_port, "/readyz")[0] == 200

        # The old process's drain closes the streams (streams.max_drain_age), then it exits.
        assert g.proc.wait(timeout=START_TIMEOUT) == 0
        for ws in sockets:
            clients.wait_closed(ws, IO_TIMEOUT)
        relay.settimeout(IO_TIMEOUT)
        try:
            assert relay.recv(100) == b""
        except ConnectionResetError:
            pass
        before = progress(loops)
        wait_progress(loops, before)  # the successor alone serves the load
    finally:
        stop.set()
        for lp in loops:
            lp.join(IO_TIMEOUT * 2)
        relay.close()
    failures = [f for lp in loops for f in lp.failures]
    total = sum(lp.ok for lp in loops)
    retried = sum(lp.retried for lp in loops)
    print(f"upgrade under load: {total} requests, {retried} retried per RFC, 0 failed")
    assert failures == [], failures[:10]
    assert total > 0
    m = g.metrics()  # the admin socket was handed over too: the successor answers
    assert m.value("gatehouse_connections_accepted_total") >= HTTP1_LOOPS
    stop_successor(new_pid)
    assert g.stderr().count("shut down") == 2


def test_broken_config_keeps_the_old_process_serving(gatehouse, echo, ws_upstream, tcp_echo,
                                                     tmp_path):
    pid_file = tmp_path / "gatehouse.pid"
    cfg = upgrade_config(echo, ws_upstream, tcp_echo)
    g = gatehouse(cfg, extra_args=["--pid-file", str(pid_file)])
    wait_until(lambda: read_pid(pid_file) == g.pid, message="the pid file")
    g.write_config(raw="clusters: [{name: broken}]\nroutes: 42\n")

    r = run_upgrade(pid_file, timeout=10)
    assert r.returncode != 0
    assert "keeps serving" in r.stderr
    wait_until(lambda: "upgrade failed, still serving" in g.stderr(),
               message="the old process to log why the upgrade failed")
    assert "exited with status 1" in g.stderr()
    assert read_pid(pid_file) == g.pid
    assert g.proc.poll() is None
    assert http_get(g.port, "/x")[0] == 200
    assert http_get(g.admin_port, "/readyz")[0] == 200

    # A binary that never says READY: the same.
    r = run_upgrade(pid_file, "--binary", "/bin/true", timeout=5)
    assert r.returncode != 0
    wait_until(lambda: "exited with status 0 before it served" in g.stderr(),
               message="the old process to log the silent successor")
    assert http_get(g.port, "/x")[0] == 200

    # Fixed: the next upgrade goes through, and the old process exits cleanly.
    g.write_config(cfg)
    r = run_upgrade(pid_file)
    assert r.returncode == 0, r.stdout + r.stderr
    new_pid = read_pid(pid_file)
    assert new_pid not in (0, g.pid)
    assert g.proc.wait(timeout=START_TIMEOUT) == 0
    assert http_get(g.port, "/x")[0] == 200
    stop_successor(new_pid)


def test_udp_listener_is_handed_over(gatehouse, tmp_path):
    up = UdpEchoServer("u").start()
    try:
        pid_file = tmp_path / "gatehouse.pid"
        cfg = {
            "clusters": [cluster("u", f"127.0.0.1:{up.port}")],
            "listeners": [
                {"name": "main", "address": "127.0.0.1", "port": "@main"},
                {"name": "udp", "address": "127.0.0.1", "port": "@udp", "mode": "udp",
                 "udp": {"cluster": "u", "responses": 1}},
            ],
            "routes": [{"name": "all", "match": {"path_prefix": "/"},
                        "direct_response": {"status": 200}}],
            "timeouts": {"drain": "1s"},
            "streams": {"max_drain_age": "1s"},
        }
        g = gatehouse(cfg, extra_args=["--pid-file", str(pid_file)])
        wait_until(lambda: read_pid(pid_file) == g.pid, message="the pid file")
        port = g.extra_port("udp")

        def ask(payload: bytes) -> bytes:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(IO_TIMEOUT)
                s.sendto(payload, ("127.0.0.1", port))
                return s.recvfrom(65536)[0]

        assert ask(b"before") == b"u:0:before"
        r = run_upgrade(pid_file)
        assert r.returncode == 0, r.stdout + r.stderr
        new_pid = read_pid(pid_file)
        # Every new client (a new source port each) is answered, while the old process drains
        # and after: the successor reads the socket, and the old one no longer does.
        for i in range(10):
            assert ask(b"during%d" % i) == b"u:0:during%d" % i
        assert g.proc.wait(timeout=START_TIMEOUT) == 0
        for i in range(10):
            assert ask(b"after%d" % i) == b"u:0:after%d" % i
        stop_successor(new_pid)
    finally:
        up.stop()
