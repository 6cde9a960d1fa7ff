"""Zone-aware balancing (issue #17, item 4): endpoints carry a zone and the process a node.zone;
the local zone takes the traffic, spills over in proportion when too few of its hosts are up,
and hands everything to the next zone when its hosts are killed, with no failed idempotent
request (retries cover the moments before health checks notice), then takes it back when they
return. Upstreams are real HTTP servers on fixed ports, killed (listener and open connections
closed) and restarted."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import GATEHOUSE_BIN, IO_TIMEOUT, free_port, wait_until

CHECK = "/health"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name, port):
        self.name = name
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self):
        conn, addr = super().get_request()
        with self.lock:
            self.conns.append(conn)
        return conn, addr


class ZoneHost:
    """An upstream named `name` on a fixed port that can be killed and brought back."""

    def __init__(self, name, zone):
        self.name, self.zone = name, zone
        self.port = free_port()
        self.server = None
        self.start()

    def start(self):
        self.server = _Server(self.name, self.port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self):
        """Closes the listener and every open connection: the host is gone."""
        s, self.server = self.server, None
        if s is None:
            return
        s.shutdown()
        s.server_close()
        with s.lock:
            for c in s.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def zones():
    hosts = [ZoneHost("a1", "a"), ZoneHost("a2", "a"), ZoneHost("b1", "b"), ZoneHost("b2", "b")]
    yield hosts
    for h in hosts:
        h.kill()


def zone_config(hosts, **locality):
    return {
        "node": {"zone": "a"},
        "clusters": [{
            "name": "svc",
            "endpoints": [{"host": "127.0.0.1", "port": h.port, "zone": h.zone} for h in hosts],
            "health_check": {"path": CHECK, "interval": "100ms", "timeout": "100ms",
                             "healthy_threshold": 1, "unhealthy_threshold": 2},
            "locality": locality,
            "retry": {"attempts": 3, "on": ["connect-failure", "reset"],
                      "backoff": {"base": "0ms"}},
        }],
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "svc"}],
    }


def spread(gh, n):
    """n GETs on one keep-alive connection: {upstream name or status: count}."""
    counts = {}
    c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=IO_TIMEOUT)
    try:
        for i in range(n):
            c.request("GET", f"/r{i}")
            r = c.getresponse()
            key = r.read().decode() if r.status == 200 else f"status {r.status}"
            counts[key] = counts.get(key, 0) + 1
    finally:
        c.close()
    return counts


def healthy(gh, host):
    return gh.metrics().get_value("gatehouse_upstream_host_healthy", cluster="svc",
                                  host=host.endpoint)


def wait_healthy(gh, hosts, want):
    for h in hosts:
        wait_until(lambda: healthy(gh, h) == want, IO_TIMEOUT,
                   message=f"host {h.name} healthy == {want}")


class Traffic(threading.Thread):
    """GETs in a loop until stopped; records who answered, in order, and every failure."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.answers: list[str] = []
        self.failures: list[str] = []

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=IO_TIMEOUT)
        for i in range(200_000):
            if self.stop.is_set():
                break
            try:
                conn.request("GET", f"/t{i}")
                r = conn.getresponse()
                body = r.read().decode()
            except OSError as e:
                self.failures.append(repr(e))
                conn.close()
                continue
            if r.status != 200:
                self.failures.append(f"status {r.status}")
            else:
                self.answers.append(body)

    def recent(self, n):
        return self.answers[-n:] if len(self.answers) >= n else []


def test_local_zone_killed_fails_over_and_comes_back(gatehouse, zones):
    a1, a2, b1, b2 = zones
    gh = gatehouse(zone_config(zones))
    wait_healthy(gh, zones, 1)
    assert set(spread(gh, 40)) <= {"a1", "a2"}

    t = Traffic(gh.port)
    t.start()
    try:
        wait_until(lambda: len(t.answers) >= 20, message="traffic to start")
        a1.kill()
        a2.kill()
        wait_healthy(gh, [a1, a2], 0)
        wait_until(lambda: (r := t.recent(30)) and set(r) <= {"b1", "b2"},
                   message="the traffic to move to zone b")
        a1.start()
        a2.start()
        wait_healthy(gh, [a1, a2], 1)
        wait_until(lambda: (r := t.recent(30)) and set(r) <= {"a1", "a2"},
                   message="the traffic to come back to zone a")
    finally:
        t.stop.set()
        t.join(IO_TIMEOUT)
    assert t.failures == [], t.failures[:10]
    assert {"b1", "b2"} <= set(t.answers)


def test_partly_unhealthy_local_zone_spills_in_proportion(gatehouse, zones):
    a1, a2, b1, b2 = zones
    # One worker: its balancer's split is exact, so the counts can be checked closely.
    gh = gatehouse(zone_config(zones, min_healthy_percent=70), workers=1)
    wait_healthy(gh, zones, 1)
    a1.kill()
    wait_healthy(gh, [a1], 0)
    # 1 of 2 local hosts up = 50% < 70%: zone a keeps 0.5 / 0.7 = 5/7 of the traffic.
    got = spread(gh, 140)
    assert set(got) <= {"a2", "b1", "b2"}, got
    assert 95 <= got.get("a2", 0) <= 105, got
    a1.start()
    wait_healthy(gh, [a1], 1)
    assert set(spread(gh, 40)) <= {"a1", "a2"}


def test_locality_without_a_local_zone_is_rejected(zones, tmp_path):
    cfg = zone_config(zones)
    del cfg["node"]
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert r.returncode == 1
    assert "clusters.svc.locality" in r.stderr and "no local zone" in r.stderr
