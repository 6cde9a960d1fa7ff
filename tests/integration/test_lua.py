"""Policy `lua`: a script's hooks on each phase of the filter chain, the `gh` API (headers, path,
query, method, bodies, short-circuit responses, who is calling, per-request variables, the
per-worker dictionary, helpers), the sandbox (each forbidden library refused), and the bounds:
an instruction budget, a memory bound and a script error each end that request with the
configured status and a log line with the script's file:line, while the worker keeps serving."""
import base64
import hashlib
import hmac
import json
import subprocess
import threading
import time

import httpx
import jwt

from support import IO_TIMEOUT, simple_config, wait_until
from support.common import GATEHOUSE_BIN


def lua_route(route_name, prefix, cluster, **policy):
    return {"name": route_name, "match": {"path_prefix": prefix}, "cluster": cluster,
            "policies": [{"name": "lua", "config": policy}]}


def start(gatehouse, tmp_path, echo, script, workers=2, **opts):
    path = tmp_path / "script.lua"
    path.write_text(script)
    cfg = simple_config({"name": "up", "endpoints": [echo.endpoint]},
                        routes=[lua_route("api", "/", "up", file=str(path), **opts)])
    return gatehouse(cfg, workers=workers), path


def echoed(r):
    assert r.status_code == 200, r.text
    body = r.json()
    body["hdrs"] = dict(body["headers"])
    return body


def test_request_headers_path_query_and_method(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  local v = gh.req.get_header("x-in")
  gh.req.set_header("x-out", string.upper(v))
  gh.req.remove_header("x-drop")
  gh.req.set_header("x-old-path", gh.req.get_path() .. "?" .. gh.req.get_query())
  gh.req.set_header("x-old-method", gh.req.get_method())
  gh.req.set_path("/rewritten" .. gh.req.get_path())
  gh.req.set_query(gh.req.get_query() .. "&added=1")
  gh.req.set_method("PUT")
  local all = gh.req.get_headers()
  gh.req.set_header("x-seen-in", all["x-in"])
end
""")
    r = httpx.get(g.url + "/a/b?q=1", headers={"x-in": "hello", "x-drop": "gone"},
                  timeout=IO_TIMEOUT)
    e = echoed(r)
    assert e["method"] == "PUT"
    assert e["path"] == "/rewritten/a/b?q=1&added=1"
    assert e["hdrs"]["x-out"] == "HELLO"
    assert e["hdrs"]["x-seen-in"] == "hello"
    assert e["hdrs"]["x-old-path"] == "/a/b?q=1"
    assert e["hdrs"]["x-old-method"] == "GET"
    assert "x-drop" not in e["hdrs"]


def test_respond_short_circuits_the_upstream(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  if gh.req.get_header("x-block") then
    gh.respond(403, "blocked by script", {["x-why"] = "policy", ["content-type"] = "text/x-lua"})
  end
end
""")
    before = echo.request_count()
    r = httpx.get(g.url + "/x", headers={"x-block": "1"}, timeout=IO_TIMEOUT)
    assert r.status_code == 403
    assert r.text == "blocked by script"
    assert r.headers["x-why"] == "policy"
    assert r.headers["content-type"] == "text/x-lua"
    assert echo.request_count() == before
    assert httpx.get(g.url + "/x", timeout=IO_TIMEOUT).status_code == 200


def test_response_headers_status_and_variables(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  gh.vars.started = "yes"
  gh.vars.n = 41
end
function on_response_headers()
  gh.resp.set_header("x-upstream-status", tostring(gh.resp.get_status()))
  gh.resp.set_header("x-had-upstream", gh.resp.get_header("x-upstream") or "none")
  gh.resp.remove_header("x-upstream")
  gh.resp.set_header("x-vars", gh.vars.started .. ":" .. (gh.vars.n + 1))
  gh.resp.set_status(201)
end
""")
    r = httpx.get(g.url + "/v", timeout=IO_TIMEOUT)
    assert r.status_code == 201
    assert r.headers["x-upstream-status"] == "200"
    assert r.headers["x-had-upstream"] == "echo-a"
    assert "x-upstream" not in r.headers
    assert r.headers["x-vars"] == "yes:42"


def test_respond_from_response_headers_replaces_the_upstream_response(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_response_headers()
  if gh.resp.get_status() == 404 then
    gh.respond(200, "replaced", {["x-replaced"] = "1"})
  end
end
""")
    r = httpx.get(g.url + "/", headers={"x-echo-status": "404"}, timeout=IO_TIMEOUT)
    assert r.status_code == 200
    assert r.text == "replaced"
    assert r.headers["x-replaced"] == "1"
    assert httpx.get(g.url + "/", timeout=IO_TIMEOUT).json()["path"] == "/"


def test_on_log_sees_the_final_status(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  if gh.req.get_path() == "/deny" then return gh.respond(418, "no") end
  gh.req.set_header("x-last", tostring(gh.shared.get("last_status")))
end
function on_log()
  gh.shared.set("last_status", gh.resp.get_status())
end
""", workers=1)
    assert httpx.get(g.url + "/deny", timeout=IO_TIMEOUT).status_code == 418
    assert echoed(httpx.get(g.url + "/", timeout=IO_TIMEOUT))["hdrs"]["x-last"] == "418"
    assert echoed(httpx.get(g.url + "/", timeout=IO_TIMEOUT))["hdrs"]["x-last"] == "200"


def test_variables_are_per_request(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  local before = gh.vars.mark
  gh.vars.mark = gh.req.get_header("x-mark")
  gh.req.set_header("x-before", tostring(before))
end
""", workers=1)
    for mark in ("a", "b"):
        e = echoed(httpx.get(g.url + "/", headers={"x-mark": mark}, timeout=IO_TIMEOUT))
        assert e["hdrs"]["x-before"] == "nil"


def test_request_body_is_buffered_and_replaced(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_body(last)
  local body = gh.req.get_body()
  gh.req.set_body(string.upper(body) .. (last and "!" or "?"))
end
""", max_body_size="1KiB")
    e = echoed(httpx.post(g.url + "/up", content=b"payload", timeout=IO_TIMEOUT))
    assert e["body_length"] == len(b"PAYLOAD!")
    assert e["body_sha256"] == hashlib.sha256(b"PAYLOAD!").hexdigest()
    r = httpx.post(g.url + "/up", content=b"x" * 2048, timeout=IO_TIMEOUT)
    assert r.status_code == 413


def test_response_body_rewritten_chunk_by_chunk(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_response_body(last)
  gh.resp.set_body(string.upper(gh.resp.get_body()) .. (last and "<END>" or ""))
end
""")
    r = httpx.get(g.url + "/lower", timeout=IO_TIMEOUT)
    assert r.status_code == 200
    assert r.text.endswith("<END>")
    assert '"PATH": "/LOWER"' in r.text


def test_who_is_calling(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  gh.req.set_header("x-route", gh.route())
  gh.req.set_header("x-client", gh.client_ip())
  gh.req.set_header("x-rid", gh.request_id())
  gh.req.set_header("x-consumer", tostring(gh.consumer()))
  gh.req.set_header("x-claim", tostring(gh.claim("sub")))
end
""")
    r = httpx.get(g.url + "/", timeout=IO_TIMEOUT)
    e = echoed(r)
    assert e["hdrs"]["x-route"] == "api"
    assert e["hdrs"]["x-client"] == "127.0.0.1"
    assert e["hdrs"]["x-rid"] == e["hdrs"]["x-request-id"]
    assert e["hdrs"]["x-consumer"] == "nil"
    assert e["hdrs"]["x-claim"] == "nil"


def test_consumer_and_claims_from_jwt_auth(gatehouse, tmp_path, echo):
    secret = b"0123456789abcdef0123456789abcdef-lua-test"
    jwks = {"keys": [{"kty": "oct", "kid": "hs",
                      "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}]}
    script = tmp_path / "claims.lua"
    script.write_text("""
function on_request_headers()
  gh.req.set_header("x-lua-consumer", tostring(gh.consumer()))
  gh.req.set_header("x-lua-sub", tostring(gh.claim("sub")))
  gh.req.set_header("x-lua-email", tostring((gh.claims() or {}).email))
end
""")
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up", "policies": [
        {"name": "jwt_auth", "config": {"jwks": json.dumps(jwks), "issuers": ["lua-test"]}},
        {"name": "lua", "config": {"file": str(script)}}]}
    g = gatehouse(simple_config({"name": "up", "endpoints": [echo.endpoint]}, routes=[route]))
    now = int(time.time())
    token = jwt.encode({"iss": "lua-test", "sub": "alice", "email": "alice@example.test",
                        "iat": now, "exp": now + 300}, secret, algorithm="HS256",
                       headers={"kid": "hs"})
    e = echoed(httpx.get(g.url + "/", headers={"authorization": f"Bearer {token}"},
                         timeout=IO_TIMEOUT))
    assert e["hdrs"]["x-lua-consumer"] == "alice"
    assert e["hdrs"]["x-lua-sub"] == "alice"
    assert e["hdrs"]["x-lua-email"] == "alice@example.test"


def test_helpers(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  local s = gh.req.get_header("x-data")
  gh.req.set_header("x-b64", gh.base64_encode(s))
  gh.req.set_header("x-b64url", gh.base64_encode("\\255\\254", true))
  gh.req.set_header("x-unb64", gh.base64_decode(gh.base64_encode(s)))
  gh.req.set_header("x-hex", gh.hex_encode(s))
  gh.req.set_header("x-unhex", gh.hex_decode("414243"))
  gh.req.set_header("x-sha", gh.hex_encode(gh.sha256(s)))
  gh.req.set_header("x-hmac", gh.hex_encode(gh.hmac_sha256("key", s)))
  local t = gh.json_decode('{"a":[1,2,{"b":null}],"c":"d"}')
  gh.req.set_header("x-json", t.c .. #t.a .. tostring(t.a[3].b == gh.null))
  gh.req.set_header("x-json-out", gh.json_encode({n = 1, list = {1, "two", true}}))
  local bad, err = gh.json_decode("{nope")
  gh.req.set_header("x-json-bad", tostring(bad) .. ":" .. err)
  gh.req.set_header("x-time", string.format("%.3f", gh.time()))
  gh.req.set_header("x-mono", tostring(gh.monotonic() > 0))
  gh.log("warn", "helper log line " .. s)
end
""")
    data = "hello world"
    now = time.time()
    e = echoed(httpx.get(g.url + "/", headers={"x-data": data}, timeout=IO_TIMEOUT))
    h = e["hdrs"]
    assert h["x-b64"] == base64.b64encode(data.encode()).decode()
    assert h["x-b64url"] == "__4"
    assert h["x-unb64"] == data
    assert h["x-hex"] == data.encode().hex()
    assert h["x-unhex"] == "ABC"
    assert h["x-sha"] == hashlib.sha256(data.encode()).hexdigest()
    assert h["x-hmac"] == hmac.new(b"key", data.encode(), hashlib.sha256).hexdigest()
    assert h["x-json"] == "d3true"
    assert json.loads(h["x-json-out"]) == {"n": 1, "list": [1, "two", True]}
    assert h["x-json-bad"] == "nil:invalid JSON"
    assert abs(float(h["x-time"]) - now) < 60
    assert h["x-mono"] == "true"
    wait_until(lambda: "helper log line hello world" in g.stderr(), message="gh.log line")
    assert "script.lua:18: helper log line" in g.stderr()


def test_shared_dict_counts_per_worker_and_survives_reload(gatehouse, tmp_path, echo):
    script = """
function on_request_headers()
  gh.req.set_header("x-count", tostring(gh.shared.incr("hits")))
  gh.shared.set("last", gh.req.get_path())
  gh.req.set_header("x-last", tostring(gh.shared.get("last")))
end
"""
    g, path = start(gatehouse, tmp_path, echo, script, workers=1, name="counter")
    counts = [echoed(httpx.get(g.url + f"/p{i}", timeout=IO_TIMEOUT))["hdrs"]["x-count"]
              for i in range(3)]
    assert counts == ["1", "2", "3"]
    # The new script runs after the reload; the dictionary keeps its count.
    path.write_text(script.replace('"x-last"', '"x-last-v2"'))
    assert g.reload() == "success"
    e = echoed(httpx.get(g.url + "/after", timeout=IO_TIMEOUT))
    assert e["hdrs"]["x-count"] == "4"
    assert e["hdrs"]["x-last-v2"] == "/after"
    assert "x-last" not in e["hdrs"]
    # A broken script fails the reload and the running one keeps serving.
    path.write_text("function on_request_headers(\n")
    assert g.reload() == "failure"
    assert echoed(httpx.get(g.url + "/again", timeout=IO_TIMEOUT))["hdrs"]["x-count"] == "5"


def test_global_dict_is_shared_by_every_worker(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  gh.respond(200, tostring(gh.global.incr("hits")) .. " " .. tostring(gh.shared.incr("hits")))
end
""", workers=2)
    globals_, locals_ = [], []
    for _ in range(30):
        # A new connection each time: the kernel spreads them over both workers.
        r = httpx.get(g.url + "/", headers={"connection": "close"}, timeout=IO_TIMEOUT)
        total, own = r.text.split()
        globals_.append(int(total))
        locals_.append(int(own))
    assert globals_ == list(range(1, 31))
    assert max(locals_) <= 30


FORBIDDEN_PROBE = """
local function probe()
  local r = {}
  r[#r + 1] = "io=" .. tostring(io == nil)
  r[#r + 1] = "os.execute=" .. tostring(os.execute == nil)
  r[#r + 1] = "os.getenv=" .. tostring(os.getenv == nil)
  r[#r + 1] = "os.time=" .. tostring(os.time ~= nil)
  r[#r + 1] = "require=" .. tostring(require == nil)
  r[#r + 1] = "package=" .. tostring(package == nil)
  r[#r + 1] = "debug=" .. tostring(debug == nil)
  r[#r + 1] = "ffi=" .. tostring(ffi == nil)
  r[#r + 1] = "jit=" .. tostring(jit == nil)
  r[#r + 1] = "dofile=" .. tostring(dofile == nil)
  r[#r + 1] = "loadfile=" .. tostring(loadfile == nil)
  r[#r + 1] = "string.dump=" .. tostring(string.dump == nil)
  r[#r + 1] = "bytecode=" .. tostring(load("\\27LJ\\2") == nil)
  r[#r + 1] = "load=" .. tostring(load("return 7")() == 7)
  r[#r + 1] = "gcstop=" .. tostring(not pcall(collectgarbage, "stop"))
  return table.concat(r, ",")
end
function on_request_headers()
  gh.respond(200, probe())
end
"""


def test_sandbox_refuses_each_forbidden_capability(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, FORBIDDEN_PROBE)
    r = httpx.get(g.url + "/", timeout=IO_TIMEOUT)
    assert r.status_code == 200
    results = dict(kv.split("=") for kv in r.text.split(","))
    assert results == {k: "true" for k in results}, results
    assert len(results) == 15


def test_allow_opens_a_library(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, FORBIDDEN_PROBE, allow=["os", "debug"])
    results = dict(kv.split("=") for kv in httpx.get(g.url + "/", timeout=IO_TIMEOUT)
                   .text.split(","))
    assert results["os.getenv"] == "false"
    assert results["debug"] == "false"
    assert results["io"] == "true"


def test_instruction_budget_ends_the_request_and_the_worker_keeps_serving(
        gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  if gh.req.get_path() == "/loop" then
    while true do end
  end
  if gh.req.get_path() == "/pcall-loop" then
    while true do pcall(function() while true do end end) end
  end
end
""", workers=1, error_status=503, max_instructions=200000)
    results = []

    def fast_requests():
        with httpx.Client(timeout=IO_TIMEOUT) as c:
            for _ in range(20):
                t0 = time.monotonic()
                results.append((c.get(g.url + "/fast").status_code, time.monotonic() - t0))

    t = threading.Thread(target=fast_requests)
    t.start()
    with httpx.Client(timeout=IO_TIMEOUT) as c:
        for path in ("/loop", "/pcall-loop", "/loop"):
            r = c.get(g.url + path)
            assert r.status_code == 503
            assert r.json()["error"] == "lua policy failed"
    t.join(IO_TIMEOUT * 2)
    assert [s for s, _ in results] == [200] * 20
    assert max(d for _, d in results) < 5
    err = wait_until(lambda: g.stderr() if "script.lua:4" in g.stderr() else None,
                     message="budget log line")
    assert "instruction budget exceeded" in err
    assert "script.lua:7" in err


def test_memory_bound_ends_the_request(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, """
hoard = {}
function on_request_headers()
  local p = gh.req.get_path()
  if p == "/big" then
    local t = {}
    for i = 1, 1e8 do t[i] = string.rep("x", 100) .. i end
  elseif p == "/grow" then
    for i = 1, 1e8 do hoard[#hoard + 1] = string.rep("y", 100) .. i end
  end
  gh.req.set_header("x-hoard", tostring(#hoard))
end
""", workers=1, max_memory="2MiB", max_instructions=0)
    for path in ("/big", "/grow", "/big"):
        r = httpx.get(g.url + path, timeout=IO_TIMEOUT)
        assert r.status_code == 500, path
        e = echoed(httpx.get(g.url + "/ok", timeout=IO_TIMEOUT))
        assert e["hdrs"]["x-hoard"] == "0"  # a state left full was replaced
    assert "memory bound exceeded" in g.stderr()


def test_script_error_logs_file_and_line(gatehouse, tmp_path, echo):
    g, path = start(gatehouse, tmp_path, echo, """
function on_request_headers()
  if gh.req.get_header("x-fail") then
    error("deliberate failure")
  end
  if gh.req.get_header("x-bad-arg") then
    gh.req.set_header("bad name", "v")
  end
end
""", workers=1)
    r = httpx.get(g.url + "/", headers={"x-fail": "1"}, timeout=IO_TIMEOUT)
    assert r.status_code == 500
    assert "x-request-id" in r.headers or r.json()["request_id"]
    assert httpx.get(g.url + "/", timeout=IO_TIMEOUT).status_code == 200
    r = httpx.get(g.url + "/", headers={"x-bad-arg": "1"}, timeout=IO_TIMEOUT)
    assert r.status_code == 500
    err = wait_until(lambda: g.stderr() if "script.lua:7" in g.stderr() else None,
                     message="error log line")
    assert f"{path}:4: deliberate failure" in err
    assert "on_request_headers failed at" in err
    assert "not a header name" in err


def test_syntax_error_fails_validation_with_file_and_line(tmp_path):
    script = tmp_path / "broken.lua"
    script.write_text("function on_request_headers()\n  local x = \nend\n")
    cfg = simple_config({"name": "up", "endpoints": ["127.0.0.1:1"]},
                        routes=[lua_route("api", "/", "up", file=str(script))],
                        listeners=[{"name": "main", "address": "127.0.0.1", "port": 1}])
    path = tmp_path / "gatehouse.yaml"
    path.write_text(json.dumps(cfg))
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0
    assert f"{script}:3:" in out.stdout + out.stderr


def test_inline_source_and_a_script_without_hooks(tmp_path):
    def validate(policy):
        cfg = simple_config({"name": "up", "endpoints": ["127.0.0.1:1"]},
                            routes=[lua_route("api", "/", "up", **policy)],
                            listeners=[{"name": "main", "address": "127.0.0.1", "port": 1}])
        path = tmp_path / "gatehouse.yaml"
        path.write_text(json.dumps(cfg))
        return subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True,
                              text=True, timeout=60)
    assert validate({"source": "function on_log() end"}).returncode == 0
    out = validate({"source": "x = 1"})
    assert out.returncode != 0 and "defines no hook" in out.stdout + out.stderr
    out = validate({"source": "function on_log() end", "allow": ["sockets"]})
    assert out.returncode != 0 and "unknown library 'sockets'" in out.stdout + out.stderr


def test_regexes(gatehouse, tmp_path, echo):
    g, _ = start(gatehouse, tmp_path, echo, r"""
function on_request_headers()
  local m = gh.re.match(gh.req.get_path(), [[^/users/(?P<id>\d+)]])
  if not m then return gh.respond(404, "no user") end
  gh.req.set_header("x-user", m.id)
  gh.req.set_path((gh.re.gsub(gh.req.get_path(), [[^/users/(\d+)]], "/v2/u/\\1")))
  gh.req.set_header("x-at", tostring((gh.re.find(gh.req.get_path(), "u/"))))
end
""")
    e = echoed(httpx.get(g.url + "/users/17/profile", timeout=IO_TIMEOUT))
    assert e["hdrs"]["x-user"] == "17"
    assert e["path"] == "/v2/u/17/profile"
    assert e["hdrs"]["x-at"] == "5"
    assert httpx.get(g.url + "/other", timeout=IO_TIMEOUT).status_code == 404
