"""Upstream retries (issue #3, item 7): retry conditions, per-try timeout, another host per
retry, non-idempotent requests, backoff, the retry budget and failover under load with a host
killed by PID. Upstreams are real servers on 127.0.0.1; nothing waits with a bare sleep."""
import http.client
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from support import (BackgroundHttpServer, IO_TIMEOUT, Reply, cluster, free_port, simple_config,
                     stop_process, wait_until)

REPLY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
             b"content-length: 4\r\n\r\nbusy")
REPLY_502 = (b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n"
             b"content-length: 3\r\n\r\nbad")
LOG_FIELDS = {"fields": ["request_id", "method", "path", "status", "upstream", "attempts",
                         "error"]}


def get_load(c, port):
    """GET /load on keep-alive connection `c`: (ok, body, connection to use next). A failed
    request gets a fresh connection, so a load loop survives an upstream kill."""
    try:
        c.request("GET", "/load")
        r = c.getresponse()
        body = r.read()
        return r.status == 200, body, c
    except (OSError, http.client.HTTPException) as e:
        c.close()
        return False, repr(e).encode(), http.client.HTTPConnection("127.0.0.1", port,
                                                                   timeout=IO_TIMEOUT * 2)

def route(cluster_name, retry, **extra):
    return {"name": "r", "match": {"path_prefix": "/"}, "cluster": cluster_name, "retry": retry,
            **extra}


def retries(gh, cluster_name, reason):
    return gh.metrics().value("gatehouse_upstream_retries_total", cluster=cluster_name,
                              reason=reason)


def get(gh, path, method="GET", body=None, headers=None):
    """One request on its own connection: (status, body bytes, response headers)."""
    c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=IO_TIMEOUT * 2)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read(), r
    finally:
        c.close()


def test_503_is_retried_on_another_host(gatehouse, echo, recorder_factory):
    busy = recorder_factory(default=REPLY_503)
    gh = gatehouse(simple_config(cluster("svc", busy, echo),
                                 routes=[route("svc", {"attempts": 2, "on": [503]})],
                                 access_log=LOG_FIELDS))
    for i in range(10):
        status, body, _ = get(gh, f"/r{i}", headers={"x-request-id": f"rq-{i}"})
        assert status == 200, body
    # Some requests went to the busy host first; each went on to the other host.
    tried = len(busy.request_list())
    assert tried >= 1
    assert retries(gh, "svc", "status") == tried
    assert len(echo.requests) == 10
    e = gh.wait_log(lambda e: e.get("attempts") == 2)
    assert e["status"] == 200 and e["upstream"] == echo_endpoint(echo)
    # A retry's pick moves each worker's round robin on, so every request may start on the busy
    # host; those that did not were answered at their first attempt.
    if tried < 10:
        gh.wait_log(lambda e: e.get("attempts") == 1 and e["status"] == 200)


def echo_endpoint(echo):
    return f"127.0.0.1:{echo.port}"


def test_per_try_timeout_then_another_host_answers(gatehouse, echo, recorder_factory):
    silent = recorder_factory(default=None)  # takes requests, never answers
    gh = gatehouse(simple_config(cluster("svc", silent, echo), routes=[
        route("svc", {"attempts": 2, "on": ["timeout"], "per_try_timeout": "300ms"})]))
    for i in range(6):
        status, body, _ = get(gh, f"/t{i}")
        assert status == 200, body
    assert len(silent.request_list()) >= 1
    assert retries(gh, "svc", "timeout") >= 1
    assert gh.metrics().value("gatehouse_upstream_timeouts_total", cluster="svc") >= 1


def test_per_try_timeout_without_retry_is_504(gatehouse, recorder_factory):
    silent = recorder_factory(default=None)
    gh = gatehouse(simple_config(cluster("svc", silent), routes=[
        route("svc", {"attempts": 1, "per_try_timeout": "200ms"})]))
    status, body, _ = get(gh, "/slow", headers={"x-request-id": "try-504"})
    assert status == 504
    assert b"try-504" in body


def test_post_is_not_retried_once_it_reached_the_upstream(gatehouse, echo, recorder_factory):
    busy = recorder_factory(default=REPLY_503)
    gh = gatehouse(simple_config(cluster("svc", busy, echo),
                                 routes=[route("svc", {"attempts": 3, "on": ["5xx"]})]))
    statuses = []
    for i in range(8):
        status, _, _ = get(gh, f"/p{i}", method="POST", body=b"x" * 100)
        statuses.append(status)
    # Every POST reached exactly one upstream: the busy host's 503 went back to the client.
    assert len(busy.request_list()) >= 1
    assert statuses.count(503) == len(busy.request_list())
    assert statuses.count(200) == len(echo.requests)
    assert len(busy.request_list()) + len(echo.requests) == 8
    assert retries(gh, "svc", "status") == 0


def test_post_is_retried_after_a_connect_failure(gatehouse, echo):
    dead = f"127.0.0.1:{free_port()}"
    gh = gatehouse(simple_config(cluster("svc", dead, echo),
                                 routes=[route("svc", {"attempts": 2, "on": ["connect-failure"]})]))
    for i in range(8):
        status, body, _ = get(gh, f"/c{i}", method="POST", body=b"y" * 5000)
        assert status == 200, body
    assert retries(gh, "svc", "connect_failure") >= 1
    assert all(r["body_length"] == 5000 for r in echo.requests)
    assert len(echo.requests) == 8


def test_idempotent_put_body_is_replayed_on_retry(gatehouse, echo, recorder_factory):
    busy = recorder_factory(default=REPLY_503)
    gh = gatehouse(simple_config(cluster("svc", busy, echo),
                                 routes=[route("svc", {"attempts": 2, "on": [503]})]))
    body = bytes(range(256)) * 40
    for i in range(6):
        status, _, _ = get(gh, f"/u{i}", method="PUT", body=body)
        assert status == 200
    assert len(busy.request_list()) >= 1
    assert all(r.body == body for r in busy.request_list())
    assert all(r["body_length"] == len(body) for r in echo.requests)


def test_reset_is_retried_for_get_but_not_for_post(gatehouse, echo, recorder_factory):
    # Closes every connection once the request arrived, without a byte of answer.
    closer = recorder_factory(script=[Reply(None, close=True) for _ in range(40)])
    gh = gatehouse(simple_config(cluster("svc", closer, echo),
                                 routes=[route("svc", {"attempts": 2, "on": ["reset"]})]))
    for i in range(6):
        status, body, _ = get(gh, f"/g{i}")
        assert status == 200, body
    reached = len(closer.request_list())
    assert reached >= 1 and retries(gh, "svc", "reset") == reached
    posts = [get(gh, f"/p{i}", method="POST", body=b"z")[0] for i in range(6)]
    assert posts.count(502) == len(closer.request_list()) - reached >= 1
    assert retries(gh, "svc", "reset") == reached


def test_only_listed_statuses_are_retried(gatehouse, echo, echo2, recorder_factory):
    busy503 = recorder_factory(default=REPLY_503)
    bad502 = recorder_factory(default=REPLY_502)
    gh = gatehouse({
        "clusters": [cluster("a", busy503, echo), cluster("b", bad502, echo2)],
        "routes": [
            {"name": "a", "match": {"path_prefix": "/a"}, "cluster": "a",
             "retry": {"attempts": 2, "on": [502]}},
            {"name": "b", "match": {"path_prefix": "/b"}, "cluster": "b",
             "retry": {"attempts": 2, "on": [502]}}]})
    a = [get(gh, f"/a{i}")[0] for i in range(8)]
    b = [get(gh, f"/b{i}")[0] for i in range(8)]
    assert a.count(503) == len(busy503.request_list()) >= 1
    assert retries(gh, "a", "status") == 0
    assert b == [200] * 8
    assert retries(gh, "b", "status") == len(bad502.request_list()) >= 1


class _Flaky(BackgroundHttpServer):
    """Answers 503 to the first `failures` requests, then 200; records arrival times."""

    def __init__(self, failures):
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                srv = self.server
                with srv.lock:
                    srv.times.append(time.monotonic())
                    status = 503 if len(srv.times) <= srv.failures else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
        self.failures = failures
        self.times = []
        super().__init__(H)


def test_backoff_separates_attempts(gatehouse):
    flaky = _Flaky(failures=2)
    try:
        gh = gatehouse(simple_config(cluster("svc", flaky), routes=[route("svc", {
            "attempts": 3, "on": [503], "backoff": {"base": "200ms", "max": "2s"}})]))
        status, _, _ = get(gh, "/b")
        assert status == 200
        t = flaky.times
        assert len(t) == 3
        # Lower bounds only (base, then 2x base); 10% slack for timer rounding.
        assert t[1] - t[0] >= 0.18, t
        assert t[2] - t[1] >= 0.36, t
    finally:
        flaky.stop()


def test_retry_budget_exhausted_gives_the_error_and_counts(gatehouse, echo, echo2):
    # One worker: the budget is per worker. At most one request may be retrying at a time.
    gh = gatehouse(simple_config(cluster("svc", echo, echo2), routes=[route("svc", {
        "attempts": 2, "on": [503], "backoff": {"base": "0ms"},
        "budget": {"percent": 0, "min_concurrency": 1}})]), workers=1)
    results = []
    lock = threading.Lock()

    def one(i):
        s, _, _ = get(gh, f"/x{i}", headers={"x-echo-status": "503", "x-echo-delay": "0.5"})
        with lock:
            results.append(s)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert results == [503] * 8
    m = gh.metrics()
    assert m.value("gatehouse_upstream_retry_budget_exhausted_total", cluster="svc") >= 1
    # Fewer retries than failed first attempts: the budget refused some.
    assert m.value("gatehouse_upstream_retries_total", cluster="svc", reason="status") < 8


def test_connect_failures_are_retried_whatever_the_budget_then_gateway_json(gatehouse):
    # A request no upstream saw adds no load when it goes elsewhere: even a budget of nothing
    # lets it try every attempt (issue 12 item 9). All hosts down: the gateway's JSON error.
    dead1, dead2 = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    gh = gatehouse(simple_config(cluster("svc", dead1, dead2), routes=[route("svc", {
        "attempts": 3, "budget": {"percent": 0, "min_concurrency": 0}})]))
    status, body, r = get(gh, "/d", headers={"x-request-id": "budget-1"})
    assert status == 502
    assert r.getheader("content-type").startswith("application/json")
    assert b'"request_id":"budget-1"' in body.replace(b" ", b"")
    assert retries(gh, "svc", "connect_failure") == 2
    assert gh.metrics().value("gatehouse_upstream_retry_budget_exhausted_total",
                              cluster="svc") == 0


def test_http2_upstream_honours_the_retry_policy(gatehouse, echo):
    # Gatehouse B is the h2c upstream: one listener always answers 503, the other proxies.
    b = gatehouse({
        "clusters": [cluster("echo", echo)],
        "listeners": [{"name": "bad", "address": "127.0.0.1", "port": "@bad",
                       "virtual_hosts": ["bad"]},
                      {"name": "good", "address": "127.0.0.1", "port": "@main",
                       "virtual_hosts": ["good"]}],
        "virtual_hosts": [
            {"name": "bad", "routes": [{"direct_response": {"status": 503}}]},
            {"name": "good", "routes": [{"cluster": "echo"}]}]}, name="b")
    a = gatehouse(simple_config(
        {"name": "h2", "protocol": "h2c",
         "endpoints": [f"127.0.0.1:{b.extra_port('bad')}", f"127.0.0.1:{b.port}"]},
        routes=[route("h2", {"attempts": 2, "on": [503]})]), name="a")
    for i in range(8):
        status, body, _ = get(a, f"/h{i}")
        assert status == 200, body
    assert retries(a, "h2", "status") >= 1


UPSTREAM_SCRIPT = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # head and body in one write: a kill never cuts a response in two
    def log_message(self, *a):
        pass
    def do_GET(self):
        body = sys.argv[1].encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
class S(ThreadingHTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def start_upstream_process(name):
    p = subprocess.Popen([sys.executable, "-c", UPSTREAM_SCRIPT, name], stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    port = int(p.stdout.readline())
    return p, f"127.0.0.1:{port}"


def test_failover_kill_one_of_three_hosts_under_load(gatehouse):
    procs = [start_upstream_process(n) for n in ("h1", "h2", "h3")]
    try:
        hc = {"type": "http", "path": "/health", "interval": "200ms", "timeout": "200ms",
              "unhealthy_threshold": 2}
        gh = gatehouse(simple_config(
            cluster("svc", *[ep for _, ep in procs], health_check=hc),
            routes=[route("svc", {"attempts": 3, "on": ["connect-failure", "reset",
                                                         "gateway-error"],
                                  "per_try_timeout": "2s"})]))
        wait_until(lambda: all(
            gh.metrics().get_value("gatehouse_upstream_host_healthy", cluster="svc", host=ep) == 1
            for _, ep in procs), message="three healthy hosts")
        total, clients = 2000, 4
        lock = threading.Lock()
        done = [0]
        failures = []
        seen = {}
        stop_at = time.monotonic() + 30

        def client():
            c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=IO_TIMEOUT * 2)
            try:
                for _ in range(total):
                    with lock:
                        if done[0] >= total or time.monotonic() > stop_at:
                            return
                        done[0] += 1
                    ok, body, c = get_load(c, gh.port)
                    with lock:
                        if ok:
                            seen[body] = seen.get(body, 0) + 1
                        else:
                            failures.append(body[:200])
            finally:
                c.close()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for th in threads:
            th.start()
        wait_until(lambda: done[0] >= total // 4, timeout=30, message="a quarter of the load")
        victim, victim_ep = procs[1]
        victim.kill()  # SIGKILL by PID, mid-load
        victim.wait(10)
        for th in threads:
            th.join(90)
        assert failures == [], failures[:5]
        assert sum(seen.values()) == done[0] and done[0] >= total // 2
        assert set(seen) == {b"h1", b"h2", b"h3"}
        # Retries, not luck, hid the dead host from the clients.
        assert gh.metrics().total("gatehouse_upstream_retries_total") >= 1
        wait_until(lambda: gh.metrics().get_value("gatehouse_upstream_host_healthy",
                                                  cluster="svc", host=victim_ep) == 0,
                   message="the killed host marked down")
    finally:
        for p, _ in procs:
            stop_process(p)


def run_weighted_failover(gatehouse, name):
    """One run of issue 12 item 9's setup: three hosts weighted 1:2:3, TCP checks every 200 ms
    with unhealthy_threshold 1, 2 workers, 6 keep-alive clients, the heaviest host SIGKILLed
    under load. Returns (client-visible failures, retry budget refusals, requests done)."""
    procs = [start_upstream_process(n) for n in ("h1", "h2", "h3")]
    try:
        endpoints = [{"host": "127.0.0.1", "port": int(ep.rsplit(":", 1)[1]), "weight": w}
                     for (_, ep), w in zip(procs, (1, 2, 3))]
        hc = {"type": "tcp", "interval": "200ms", "timeout": "200ms", "unhealthy_threshold": 1}
        gh = gatehouse(simple_config(
            cluster("svc", *endpoints, health_check=hc),
            routes=[route("svc", {"attempts": 3, "on": ["connect-failure", "reset",
                                                         "gateway-error"]})],
            access_log=LOG_FIELDS), workers=2, name=name)
        hosts = [ep for _, ep in procs]
        wait_until(lambda: all(
            gh.metrics().get_value("gatehouse_upstream_host_healthy", cluster="svc", host=h) == 1
            for h in hosts), message="three healthy hosts")
        lock = threading.Lock()
        done = [0]
        failures = []
        stop = threading.Event()

        def client():
            c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=IO_TIMEOUT * 2)
            try:
                while not stop.is_set():
                    ok, body, c = get_load(c, gh.port)
                    with lock:
                        done[0] += 1
                        if not ok:
                            failures.append(body[:200])
            finally:
                c.close()
        threads = [threading.Thread(target=client) for _ in range(6)]
        for th in threads:
            th.start()
        try:
            wait_until(lambda: done[0] >= 300, timeout=30, message="load before the kill")
            victim, victim_ep = procs[2]
            victim.kill()  # SIGKILL by PID, mid-load
            victim.wait(10)
            wait_until(lambda: gh.metrics().get_value("gatehouse_upstream_host_healthy",
                                                      cluster="svc", host=victim_ep) == 0,
                       message="the killed host marked down")
            after = done[0]
            wait_until(lambda: done[0] >= after + 300, timeout=30, message="load after")
        finally:
            stop.set()
            for th in threads:
                th.join(60)
        exhausted = gh.metrics().value("gatehouse_upstream_retry_budget_exhausted_total",
                                       cluster="svc")
        if failures:  # what the gateway saw of them, for the assertion message
            failures += [e for e in gh.access_log() if e.get("status", 200) >= 500][:5]
        return failures, exhausted, done[0]
    finally:
        for p, _ in procs:
            stop_process(p)


def test_failover_weighted_hosts_keeps_its_retry_budget(gatehouse):
    # Issue 12 item 9: requests backing off after a failure on the dead host held the budget's
    # slots, so on a worker with more than min_concurrency clients every further pick of the
    # dead host got an immediate 502. GATEHOUSE_FAILOVER_RUNS=20 runs it 20 times in a row.
    runs = int(os.environ.get("GATEHOUSE_FAILOVER_RUNS", "3"))
    for run in range(runs):
        failures, exhausted, done = run_weighted_failover(gatehouse, f"failover{run}")
        assert failures == [], (run, exhausted, len(failures), failures[:3])
        assert exhausted == 0, (run, exhausted)
        assert done >= 600
