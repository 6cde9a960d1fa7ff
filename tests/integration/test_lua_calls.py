"""Policy `lua`, gh.call: a sub-request to a cluster suspends the script as a coroutine (not the
worker) on the cluster client. Answers, failures and timeouts reach the script; other requests
keep being served while one waits; a reload or a client gone while a script waits leaves the
gateway serving."""
import threading
import time

import httpx

from support import IO_TIMEOUT, cluster, simple_config, wait_until
from support.common import free_port


def lua_config(script_path, *clusters, **policy):
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up",
             "policies": [{"name": "lua", "config": {"file": str(script_path), **policy}}]}
    return simple_config(*clusters, routes=[route])


def start(gatehouse, tmp_path, script, *clusters, workers=1, **policy):
    path = tmp_path / "calls.lua"
    path.write_text(script)
    return gatehouse(lua_config(path, *clusters, **policy), workers=workers), path


CALL_SCRIPT = """
function on_request_headers()
  local status, headers, body = gh.call("auth", {
    method = "POST", path = "/check?user=" .. (gh.req.get_header("x-user") or ""),
    headers = {["x-from-lua"] = "yes", ["x-echo-header"] = "x-verdict: allow"},
    body = "who=" .. (gh.req.get_header("x-user") or ""), timeout = 5})
  if not status then
    return gh.respond(502, "sub-request failed: " .. headers)
  end
  local seen = gh.json_decode(body)
  gh.req.set_header("x-auth-status", tostring(status))
  gh.req.set_header("x-auth-verdict", headers["x-verdict"])
  gh.req.set_header("x-auth-saw", seen.method .. " " .. seen.path .. " " .. seen.upstream)
  gh.req.set_header("x-auth-body", tostring(seen.body_length))
end
"""


def test_sub_request_to_a_cluster(gatehouse, tmp_path, echo, echo2):
    g, _ = start(gatehouse, tmp_path, CALL_SCRIPT, cluster("up", echo), cluster("auth", echo2))
    r = httpx.get(g.url + "/x", headers={"x-user": "ann"}, timeout=IO_TIMEOUT)
    assert r.status_code == 200, r.text
    hdrs = dict(r.json()["headers"])
    assert hdrs["x-auth-status"] == "200"
    assert hdrs["x-auth-verdict"] == "allow"
    assert hdrs["x-auth-saw"] == "POST /check?user=ann echo-b"
    assert hdrs["x-auth-body"] == str(len("who=ann"))
    assert r.json()["upstream"] == "echo-a"
    # The sub-request is counted on its cluster like a proxied request.
    assert g.metrics().value("gatehouse_upstream_requests_total", cluster="auth") >= 1


def test_sub_request_failures_reach_the_script(gatehouse, tmp_path, echo):
    dead = f"127.0.0.1:{free_port()}"
    g, _ = start(gatehouse, tmp_path, """
function on_request_headers()
  local name = gh.req.get_header("x-cluster")
  local status, err = gh.call(name, {path = "/", timeout = 2})
  gh.respond(200, tostring(status) .. "|" .. tostring(err))
end
""", cluster("up", echo), cluster("dead", dead, retry={"attempts": 1}))
    r = httpx.get(g.url + "/", headers={"x-cluster": "dead"}, timeout=IO_TIMEOUT)
    assert r.text == "nil|upstream connect failed"
    r = httpx.get(g.url + "/", headers={"x-cluster": "nowhere"}, timeout=IO_TIMEOUT)
    assert r.text == "nil|unknown upstream cluster"


def test_sub_request_timeout(gatehouse, tmp_path, echo, echo2):
    g, _ = start(gatehouse, tmp_path, """
function on_request_headers()
  local t0 = gh.monotonic()
  local status, err = gh.call("slow", {headers = {["x-echo-delay"] = "10"}, timeout = 0.3})
  gh.respond(200, tostring(status) .. "|" .. tostring(err) .. "|" ..
                  string.format("%.1f", gh.monotonic() - t0))
end
""", cluster("up", echo), cluster("slow", echo2))
    t0 = time.monotonic()
    r = httpx.get(g.url + "/", timeout=IO_TIMEOUT)
    status, err, waited = r.text.split("|")
    assert (status, err) == ("nil", "timeout")
    assert 0.2 <= float(waited) < 5
    assert time.monotonic() - t0 < 8


def test_call_errors_in_phases_without_a_pause(gatehouse, tmp_path, echo, echo2):
    g, _ = start(gatehouse, tmp_path, """
function on_response_body(last)
  local ok, err = pcall(gh.call, "auth")
  if last then gh.resp.set_body(gh.resp.get_body() .. "|" .. tostring(ok) .. "|" .. err) end
end
""", cluster("up", echo), cluster("auth", echo2))
    r = httpx.get(g.url + "/", timeout=IO_TIMEOUT)
    assert "|false|" in r.text
    assert "available in on_request_headers, on_request_body and on_response_headers" in r.text
    assert echo2.request_count() == 0


WAIT_SCRIPT = """
function on_request_headers()
  if gh.req.get_path() == "/slow" then
    local status = gh.call("auth", {headers = {["x-echo-wait"] = gh.req.get_header("x-gate")},
                                    timeout = 20})
    gh.req.set_header("x-auth", tostring(status) .. "-VERSION")
  end
  gh.req.set_header("x-version", "VERSION")
end
function on_response_headers()
  local status = gh.call("auth", {path = "/after"})
  gh.resp.set_header("x-after", tostring(status))
end
"""


def test_a_waiting_script_does_not_block_the_worker(gatehouse, tmp_path, echo, echo2):
    g, _ = start(gatehouse, tmp_path, WAIT_SCRIPT.replace("VERSION", "v1"),
                 cluster("up", echo), cluster("auth", echo2), workers=1)
    slow = {}

    def slow_request():
        slow["r"] = httpx.get(g.url + "/slow", headers={"x-gate": "g1"}, timeout=30)

    t = threading.Thread(target=slow_request)
    t.start()
    wait_until(lambda: echo2.request_count() >= 1, message="the sub-request reached auth")
    # The one worker serves other requests (each with its own sub-request) meanwhile.
    for _ in range(5):
        r = httpx.get(g.url + "/fast", timeout=IO_TIMEOUT)
        assert r.status_code == 200
        assert r.headers["x-after"] == "200"
    assert "r" not in slow
    echo2.release("g1")
    t.join(30)
    r = slow["r"]
    assert r.status_code == 200
    assert dict(r.json()["headers"])["x-auth"] == "200-v1"


def test_reload_and_a_client_gone_while_a_script_waits(gatehouse, tmp_path, echo, echo2):
    g, path = start(gatehouse, tmp_path, WAIT_SCRIPT.replace("VERSION", "v1"),
                    cluster("up", echo), cluster("auth", echo2), workers=1)
    slow = {}

    def slow_request():
        slow["r"] = httpx.get(g.url + "/slow", headers={"x-gate": "reload"}, timeout=30)

    t = threading.Thread(target=slow_request)
    t.start()
    wait_until(lambda: echo2.request_count() >= 1, message="the sub-request reached auth")
    path.write_text(WAIT_SCRIPT.replace("VERSION", "v2"))
    assert g.reload() == "success"
    r = httpx.get(g.url + "/fast", timeout=IO_TIMEOUT)
    assert dict(r.json()["headers"])["x-version"] == "v2"
    echo2.release("reload")
    t.join(30)
    # The request that waited through the reload finishes on the script it started with.
    assert dict(slow["r"].json()["headers"])["x-auth"] == "200-v1"

    # A client that gives up while its script waits.
    before = echo2.request_count()
    try:
        httpx.get(g.url + "/slow", headers={"x-gate": "gone"}, timeout=0.5)
    except httpx.TimeoutException:
        pass
    wait_until(lambda: echo2.request_count() > before, message="the abandoned sub-request")
    echo2.release("gone")
    for _ in range(3):
        r = httpx.get(g.url + "/fast", timeout=IO_TIMEOUT)
        assert r.status_code == 200 and r.headers["x-after"] == "200"
    assert g.proc.poll() is None
