"""`gatehouse lua-test`: a script's hooks run against a described request without a gateway;
what they did is printed as text or JSON (header changes, a short-circuit reply, variables,
sub-requests answered from fixtures, log lines, metrics), and a failing hook exits non-zero.
The same script runs in the gateway with the same effect."""
import json
import subprocess

import httpx

from support import IO_TIMEOUT, cluster, simple_config
from support.common import GATEHOUSE_BIN

SCRIPT = """
function on_request_headers()
  local user = gh.req.get_header("x-user")
  if not user then return gh.respond(401, "no user", {["www-authenticate"] = "User"}) end
  local status, headers = gh.call("authz", {path = "/check?u=" .. user})
  if not status then return gh.respond(503, headers) end
  if status ~= 200 then return gh.respond(403, "denied") end
  gh.req.set_header("x-scope", headers["x-scope"] or "none")
  gh.req.remove_header("x-drop")
  gh.vars.user = user
  gh.log("info", "checked " .. user)
  gh.metric.incr("checks", 1, {user = user})
end
function on_response_headers()
  gh.resp.set_header("x-user", gh.vars.user)
  gh.resp.remove_header("x-internal")
end
"""
POLICY = {"metrics": [{"name": "checks", "labels": ["user"]}]}


def lua_test(tmp_path, request, *extra, script=SCRIPT):
    path = tmp_path / "script.lua"
    path.write_text(script)
    req = tmp_path / "request.json"
    req.write_text(json.dumps(request))
    return subprocess.run([GATEHOUSE_BIN, "lua-test", str(path), "--request", str(req),
                           "--policy", json.dumps(POLICY), *extra],
                          capture_output=True, text=True, timeout=60)


def test_json_report(tmp_path):
    out = lua_test(tmp_path, {
        "method": "POST", "path": "/orders?x=1", "headers": {"x-user": "ann", "x-drop": "1"},
        "response": {"status": 201, "headers": {"x-internal": "secret"}, "body": "made"},
        "calls": {"authz /check?u=ann": {"status": 200, "headers": {"x-scope": "write"}}}},
        "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert [h["hook"] for h in r["hooks"]] == ["on_request_headers", "on_response_headers"]
    assert all(h["result"] == "ok" for h in r["hooks"])
    assert r["request"]["headers"] == {"set": {"x-scope": "write"}, "removed": ["x-drop"]}
    assert r["request"]["path"] == "/orders" and r["request"]["query"] == "x=1"
    assert r["sub_requests"] == [{"hook": "on_request_headers", "cluster": "authz",
                                  "method": "GET", "path": "/check?u=ann", "body": "",
                                  "answer_status": 200}]
    assert r["response"]["status"] == 201
    assert r["response"]["headers"] == {"set": {"x-user": "ann"}, "removed": ["x-internal"]}
    assert r["status"] == 201
    assert r["vars"] == {"user": "ann"}
    assert r["logs"] == [f"info {tmp_path / 'script.lua'}:11: checked ann"]
    assert r["metrics"] == [{"name": "checks", "labels": {"user": "ann"}, "value": 1.0}]


def test_short_circuit_and_missing_fixture_as_text(tmp_path):
    out = lua_test(tmp_path, {"path": "/"})
    assert out.returncode == 0, out.stderr
    assert "hook on_request_headers: ok (responded)" in out.stdout
    assert "reply (short-circuit): 401" in out.stdout
    assert "www-authenticate: User" in out.stdout
    assert "status: 401" in out.stdout
    out = lua_test(tmp_path, {"headers": {"x-user": "bob"}})
    assert "sub-request authz GET /check?u=bob -> no fixture for authz /check?u=bob" in out.stdout
    assert "status: 503" in out.stdout
    out = lua_test(tmp_path, {"headers": {"x-user": "eve"},
                              "calls": {"authz": {"error": "timeout"}}})
    assert "-> timeout" in out.stdout


def test_a_failing_hook_exits_non_zero(tmp_path):
    out = lua_test(tmp_path, {}, script="function on_request_headers()\n  local x\n  x.y = 1\nend\n")
    assert out.returncode == 1
    assert "hook on_request_headers: error at" in out.stdout
    assert "script.lua:3" in out.stdout
    assert "status: 500" in out.stdout
    out = lua_test(tmp_path, {}, script="function on_request_headers(\n")
    assert out.returncode == 1 and "script.lua" in out.stderr
    bad = subprocess.run([GATEHOUSE_BIN, "lua-test", "x.lua"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_the_same_script_in_the_gateway(gatehouse, tmp_path, echo, echo2):
    path = tmp_path / "gw.lua"
    path.write_text(SCRIPT)
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up", "policies": [
        {"name": "lua", "config": {"file": str(path), **POLICY}}]}
    g = gatehouse(simple_config(cluster("up", echo), cluster("authz", echo2), routes=[route]))
    r = httpx.get(g.url + "/orders", headers={"x-user": "ann", "x-drop": "1"}, timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.headers["x-user"] == "ann"
    hdrs = dict(r.json()["headers"])
    assert hdrs["x-scope"] == "none" and "x-drop" not in hdrs
    assert httpx.get(g.url + "/", timeout=IO_TIMEOUT).status_code == 401
