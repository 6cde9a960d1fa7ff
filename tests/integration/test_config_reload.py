"""`gatehouse validate`, SIGHUP and file-watch reloads, rejected reloads, and reloads under
continuous keep-alive load."""
import http.client
import json
import re
import socket
import subprocess
import threading
import time

import httpx
import pytest

from support import (GATEHOUSE_BIN, IO_TIMEOUT, REPO, cluster, http_get, request_bytes,
                      simple_config, wait_until)


def validate(path):
    return subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True,
                          timeout=60)


VALID = """\
clusters:
  - name: users
    endpoints: ["127.0.0.1:9001", {host: 127.0.0.1, port: 9002, weight: 2}]
routes:
  - name: health
    match: {path_exact: /healthz}
    direct_response: {status: 200, body: "ok\\n"}
  - name: users
    match: {path_prefix: /users}
    cluster: users
"""

INVALID = {
    "unknown_cluster": (
        "clusters:\n  - name: a\n    endpoints: [\"127.0.0.1:9001\"]\n"
        "routes:\n  - match: {path_prefix: /}\n    cluster: payments\n",
        [(6, "routes[0].cluster", "unknown cluster 'payments'")]),
    "unknown_top_level_key": (
        "clusters:\n  - name: a\n    endpoints: [\"127.0.0.1:9001\"]\nroutez: []\n",
        [(4, "routez", "unknown option 'routez'")]),
    "bad_duration": (
        "timeouts:\n  client_header: 10 parsecs\n",
        [(2, "timeouts.client_header", "expected a duration")]),
    "duplicate_cluster": (
        "clusters:\n  - name: a\n    endpoints: [\"127.0.0.1:9001\"]\n"
        "  - name: a\n    endpoints: [\"127.0.0.1:9002\"]\nroutes:\n  - cluster: a\n",
        [(4, "clusters[1].name", "duplicate cluster name 'a'")]),
    "unknown_policy": (
        "clusters:\n  - name: a\n    endpoints: [\"127.0.0.1:9001\"]\n"
        "routes:\n  - cluster: a\n    policies:\n      - name: nosuch\n",
        [(7, "routes[0].policies[0]", "unknown policy 'nosuch'")]),
    "policy_config_error": (
        "clusters:\n  - name: a\n    endpoints: [\"127.0.0.1:9001\"]\n"
        "routes:\n  - cluster: a\n    policies:\n      - name: headers\n"
        "        config: {request: {set: {content-length: \"5\"}}}\n",
        [(7, "routes[0].policies[0].config", "content-length")]),
    "two_errors_sorted": (
        "timeouts:\n  drain: forever\nlimits:\n  max_headers: 0\n",
        [(2, "timeouts.drain", "duration"), (4, "limits.max_headers", "")]),
}


def test_validate_accepts_valid_file(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text(VALID)
    p = validate(f)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"{f}: ok (2 routes, 1 clusters)"


@pytest.mark.parametrize("name", list(INVALID))
def test_validate_rejects_invalid_file_with_file_line_path_message(tmp_path, name):
    text, expected = INVALID[name]
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    p = validate(f)
    assert p.returncode == 1, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert lines[-1] == f"{f}: {len(expected)} error(s)", p.stderr
    assert len(lines) == len(expected) + 1, p.stderr
    for line, (lineno, path, msg) in zip(lines, expected):
        m = re.match(rf"^{re.escape(str(f))}:(\d+)(?::\d+)?: {re.escape(path)}: (.*)$", line)
        assert m, f"not 'file:line[:col]: path: message': {line!r}"
        assert int(m.group(1)) == lineno, line
        assert msg in m.group(2), line


def test_validate_reports_yaml_syntax_error_with_line(tmp_path):
    f = tmp_path / "syntax.yaml"
    f.write_text("clusters:\n  - name: a\n    endpoints: [\"127.0.0.1:9001\"\n")
    p = validate(f)
    assert p.returncode == 1
    assert re.search(rf"^{re.escape(str(f))}:\d+:\d+: .*YAML syntax error", p.stderr, re.M), p.stderr


def test_validate_missing_file_and_usage(tmp_path):
    p = validate(tmp_path / "nope.yaml")
    assert p.returncode == 1
    assert "nope.yaml" in p.stderr
    p = subprocess.run([GATEHOUSE_BIN, "validate"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "usage:" in p.stderr


EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_configs_validate(path):
    p = validate(path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{path}: ok")


def test_run_with_invalid_config_exits_nonzero(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(INVALID["unknown_cluster"][0])
    p = subprocess.run([GATEHOUSE_BIN, "run", "-c", str(f), "--workers", "1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "unknown cluster 'payments'" in p.stderr


def local(body, name="r"):
    return {"name": name, "match": {"path_prefix": "/"},
            "direct_response": {"status": 200, "body": body}}


def body_of(gh, path="/"):
    status, body = http_get(gh.port, path)
    return status, body.decode()


def test_sighup_reload_switches_routes_and_clusters(gatehouse, echo, echo2):
    cfg = simple_config(cluster("a", echo), cluster("b", echo2), routes=[
        {"name": "svc", "match": {"path_prefix": "/svc"}, "cluster": "a"},
        local("one")])
    gh = gatehouse(cfg)
    assert body_of(gh) == (200, "one")
    assert json.loads(body_of(gh, "/svc")[1])["upstream"] == "echo-a"
    gen0 = json.loads(http_get(gh.admin_port, "/config")[1])["generation"]

    cfg["routes"] = [{"name": "svc", "match": {"path_prefix": "/svc"}, "cluster": "b"},
                     {"name": "new", "match": {"path_prefix": "/new"},
                      "direct_response": {"status": 201, "body": "fresh"}},
                     local("two")]
    gh.write_config(cfg)
    assert gh.reload() == "success"
    # Workers pick the snapshot up asynchronously: poll for the new answer.
    wait_until(lambda: body_of(gh) == (200, "two"), message="new route body")
    assert body_of(gh, "/new") == (201, "fresh")
    assert json.loads(body_of(gh, "/svc")[1])["upstream"] == "echo-b"
    assert json.loads(http_get(gh.admin_port, "/config")[1])["generation"] == gen0 + 1


def test_file_watch_reloads_on_change(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("a", echo), routes=[local("v1")], watch=True))
    assert body_of(gh) == (200, "v1")
    ok0, _ = gh.reload_counts()
    # Atomic replace (rename into place), as config management tools do.
    gh.write_config(simple_config(cluster("a", echo), routes=[local("v2")], watch=True))
    wait_until(lambda: body_of(gh) == (200, "v2"), message="reload after rename")
    # In-place rewrite, as editors do.
    text = json.dumps(gh.full_config(simple_config(cluster("a", echo), routes=[local("v3")],
                                                   watch=True)))
    with open(gh.config_path, "w") as f:
        f.write(text)
    wait_until(lambda: body_of(gh) == (200, "v3"), message="reload after in-place write")
    ok, bad = gh.reload_counts()
    assert ok >= ok0 + 2 and bad == 0


def test_file_watch_ignores_other_files_and_unchanged_content(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("a", echo), routes=[local("same")], watch=True))
    (gh.dir / "unrelated.yaml").write_text("garbage: [")
    # Rewrite identical bytes: no reload. Then a real change, to have something to wait for.
    gh.config_path.write_bytes(gh.config_path.read_bytes())
    gh.write_config(simple_config(cluster("a", echo), routes=[local("changed")], watch=True))
    wait_until(lambda: body_of(gh) == (200, "changed"), message="reload after change")
    ok, bad = gh.reload_counts()
    assert bad == 0
    assert ok == 1, f"{ok} reloads: unrelated file or unchanged bytes triggered a reload"


def test_bad_config_on_reload_is_rejected_and_old_config_keeps_serving(gatehouse, echo):
    good = simple_config(cluster("a", echo), routes=[local("stable")])
    gh = gatehouse(good)
    gh.write_config(raw="clusters: [\n")
    assert gh.reload() == "failure"
    gh.write_config(simple_config(cluster("a", echo), routes=[
        {"name": "x", "match": {"path_prefix": "/"}, "cluster": "missing"}]))
    assert gh.reload() == "failure"
    m = gh.metrics()
    assert m.value("gatehouse_config_reloads_total", result="failure") == 2
    assert m.value("gatehouse_config_reloads_total", result="success") == 0
    assert body_of(gh) == (200, "stable")
    assert "reload rejected" in gh.stderr()
    assert "unknown cluster 'missing'" in gh.stderr()
    gh.write_config(simple_config(cluster("a", echo), routes=[local("recovered")]))
    assert gh.reload() == "success"
    wait_until(lambda: body_of(gh) == (200, "recovered"), message="recovered config")


def gen_config(echo, gen):
    policy = {"name": "headers", "config": {"response": {"set": {"x-gen": str(gen)}}}}
    return simple_config(cluster("a", echo, idle_timeout="30s"), routes=[
        {"name": "load", "match": {"path_prefix": "/"}, "cluster": "a", "policies": [policy]}])


@pytest.mark.slow
def test_twenty_reloads_under_keepalive_load_fail_no_request(gatehouse, echo):
    gh = gatehouse(gen_config(echo, 0))
    accepted0 = gh.metrics().value("gatehouse_connections_accepted_total")
    nthreads = 4
    stop = threading.Event()
    counts = [0] * nthreads
    failures = []
    gens = [[] for _ in range(nthreads)]
    t_end = time.monotonic() + 90  # hard bound on the load, whatever happens

    def hammer(tid):
        conn = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=IO_TIMEOUT)
        try:
            for i in range(10 ** 6):
                if stop.is_set() or time.monotonic() > t_end:
                    return
                try:
                    conn.request("GET", f"/load/{tid}/{i}")
                    r = conn.getresponse()
                    body = r.read()
                    if r.status != 200 or f"/load/{tid}/{i}".encode() not in body:
                        failures.append((tid, i, r.status, body[:200]))
                    elif (r.getheader("connection") or "").lower() == "close":
                        failures.append((tid, i, "connection: close"))
                    gens[tid].append(int(r.getheader("x-gen", "-1")))
                    counts[tid] += 1
                except Exception as e:  # noqa: BLE001 - every error is a failed request
                    failures.append((tid, i, repr(e)))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=IO_TIMEOUT)
        finally:
            conn.close()

    threads = [threading.Thread(target=hammer, args=(t,), daemon=True) for t in range(nthreads)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: min(counts) >= 5, message="load to start on every connection")
        for gen in range(1, 21):
            before = list(counts)
            gh.write_config(gen_config(echo, gen))
            assert gh.reload() == "success", gh.stderr()[-2000:]
            # Keep the load continuous: every client makes progress across every reload.
            wait_until(lambda: all(c >= b + 3 for c, b in zip(counts, before)),
                       message=f"every client to progress after reload {gen}")
            assert not failures, failures[:5]
        wait_until(lambda: http_get(gh.port, "/final")[0] == 200 and
                   gens_after(gh) == 20, message="the last generation to serve")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    total = sum(counts)
    print(f"requests under reload: {total} ({counts})")
    assert failures == [], f"{len(failures)} failed requests: {failures[:5]}"
    assert min(counts) > 20
    for tid, g in enumerate(gens):
        # One connection lives on one worker, which applies snapshots in order.
        assert g == sorted(g), f"client {tid} saw generations go backwards"
        assert g[-1] >= 19
    # No client connection was dropped and silently re-opened by http.client.
    assert gh.metrics().value("gatehouse_connections_accepted_total") - accepted0 \
        <= nthreads + 2  # + the /final probes' connections, one per poll
    assert gh.metrics().value("gatehouse_config_reloads_total", result="success") == 20


def gens_after(gh):
    c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=5)
    try:
        c.request("GET", "/probe")
        r = c.getresponse()
        r.read()
        return int(r.getheader("x-gen", "-1"))
    finally:
        c.close()


def test_reload_keeps_in_flight_request_on_old_snapshot(gatehouse, echo, echo2):
    cfg = simple_config(cluster("a", echo), routes=[
        {"name": "svc", "match": {"path_prefix": "/"}, "cluster": "a"}])
    gh = gatehouse(cfg)
    with gh.conn() as c:
        c.send(request_bytes("GET", "/inflight", headers=[("x-echo-wait", "go")]))
        wait_until(lambda: echo.request_count() == 1, message="request to reach the upstream")
        gh.write_config(simple_config(cluster("b", echo2), routes=[
            {"name": "svc", "match": {"path_prefix": "/"}, "cluster": "b"}]))
        assert gh.reload() == "success"
        echo.release("go")
        r = c.read_response()
        assert r.status == 200 and r.json()["upstream"] == "echo-a"
        # The next request on the same connection uses the new snapshot.
        c.send(request_bytes("GET", "/after"))
        assert c.read_response().json()["upstream"] == "echo-b"


def test_reload_adds_and_removes_listeners(gatehouse):
    main = {"name": "main", "address": "127.0.0.1", "port": "@main"}
    extra = {"name": "extra", "address": "127.0.0.1", "port": "@extra"}
    gh = gatehouse({"listeners": [main], "routes": [local("hi")]})
    port = gh.extra_port("extra")

    def serves():
        try:
            return http_get(port, "/", timeout=2) == (200, b"hi")
        except ConnectionRefusedError:
            return False

    assert not serves()
    gh.write_config({"listeners": [main, extra], "routes": [local("hi")]})
    assert gh.reload() == "success"
    wait_until(serves, message="the added listener to serve")
    gh.write_config({"listeners": [main], "routes": [local("hi")]})
    assert gh.reload() == "success"

    def refused():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return False
        except ConnectionRefusedError:
            return True
    wait_until(refused, message="the removed listener to close")
    assert body_of(gh) == (200, "hi")


def test_reload_switches_access_log_path(gatehouse, echo):
    gh = gatehouse(simple_config(cluster("a", echo), routes=[local("x")]))
    new_log = gh.dir / "second.log"
    http_get(gh.port, "/first")
    gh.wait_log(lambda e: e["path"] == "/first")
    gh.write_config(simple_config(cluster("a", echo), routes=[local("x")],
                                  access_log={"path": str(new_log)}))
    assert gh.reload() == "success"

    def in_new_log():
        http_get(gh.port, "/second")
        return new_log.exists() and "/second" in new_log.read_text()
    wait_until(in_new_log, interval=0.25, message="requests logged to the new path")
    assert "/first" not in new_log.read_text()


def test_idle_connections_survive_reloads_and_then_use_the_new_config(gatehouse, echo):
    # Idle keep-alive connections (HTTP/1.1 and h2c) and one that has not sent a byte yet hold
    # no snapshot: after reloads replaced theirs, they serve their next request from the new one.
    cfg = simple_config(cluster("a", echo), routes=[local("v0")])
    gh = gatehouse(cfg, workers=1)
    h1 = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=IO_TIMEOUT)
    h1.request("GET", "/")
    assert h1.getresponse().read() == b"v0"
    h2 = httpx.Client(http1=False, http2=True, timeout=IO_TIMEOUT * 2)
    r = h2.get(f"{gh.url}/")
    assert (r.http_version, r.text) == ("HTTP/2", "v0")
    silent = socket.create_connection(("127.0.0.1", gh.port), timeout=IO_TIMEOUT)
    for gen in range(1, 4):
        cfg["routes"] = [local(f"v{gen}")]
        cfg["timeouts"] = {"keepalive_idle": f"{30 + gen}s", "client_header": f"{20 + gen}s"}
        gh.write_config(cfg)
        assert gh.reload() == "success"
        wait_until(lambda g=gen: body_of(gh) == (200, f"v{g}"), message=f"generation {gen}")
    h1.request("GET", "/")
    assert h1.getresponse().read() == b"v3"
    r = h2.get(f"{gh.url}/")
    assert (r.http_version, r.text) == ("HTTP/2", "v3")
    silent.sendall(request_bytes("GET", "/", host="x"))
    got = b""
    while not got.endswith(b"v3") and (chunk := silent.recv(65536)):
        got += chunk
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"v3")
    h1.close()
    h2.close()
    silent.close()
