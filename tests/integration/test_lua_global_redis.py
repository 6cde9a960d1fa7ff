"""Policy lua, gh.global through Redis (fleet mode, issue 19): gateways that name the same Redis
share one dictionary per script name. A real redis-server per test; two gateways count
exactly; ttls expire; Redis down gives the configured failure mode; values survive a reload
and a restart of the gateway. Every wait is a condition, never a bare sleep."""
import json
import socket
import subprocess
import threading

import httpx
import pytest

from support import IO_TIMEOUT, RedisServer, resp_command, simple_config, wait_until
from support.common import GATEHOUSE_BIN
from support.redis import REDIS_BIN

pytestmark = pytest.mark.skipif(REDIS_BIN is None, reason="redis-server is not installed")

# One request = one gh.global call, chosen by headers; the body shows what it returned.
SCRIPT = """
local function show(...)
  local out = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    out[#out + 1] = type(v) .. ":" .. tostring(v)
  end
  return table.concat(out, " ")
end

local function value(h)
  local t, v = gh.req.get_header("x-type"), gh.req.get_header("x-value")
  if t == "number" then return tonumber(v) end
  if t == "boolean" then return v == "true" end
  return v
end

function on_request_headers()
  local op = gh.req.get_header("x-op")
  if not op then return end
  local key = gh.req.get_header("x-key") or "k"
  local ttl = tonumber(gh.req.get_header("x-ttl") or "")
  local r
  if op == "incr" then
    r = show(gh.global.incr(key, tonumber(gh.req.get_header("x-by") or "1"), 0, ttl))
  elseif op == "get" then
    r = show(gh.global.get(key))
  elseif op == "set" then
    r = show(gh.global.set(key, value(), ttl))
  elseif op == "add" then
    r = show(gh.global.add(key, value(), ttl))
  elseif op == "delete" then
    r = show(gh.global.delete(key))
  end
  gh.respond(200, r)
end

function on_response_headers()
  gh.resp.set_header("x-seen", show(gh.global.get("k")))
end

function on_log()
  gh.log("info", "on_log global: " .. show(gh.global.get("k")))
end
"""


@pytest.fixture
def redis(tmp_path):
    r = RedisServer(tmp_path / "redis").start()
    yield r
    r.stop()


def config(tmp_path, echo, redis, script=SCRIPT, name="fleet", **opts):
    path = tmp_path / "global.lua"
    path.write_text(script)
    policy = {"file": str(path), "name": name,
              # Generous: the box is loaded, and a timeout would turn into the failure mode.
              "redis": {"address": redis.address, "timeout": "2s", "connect_timeout": "2s"},
              **opts}
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up",
             "policies": [{"name": "lua", "config": policy}]}
    return simple_config({"name": "up", "endpoints": [echo.endpoint]}, routes=[route]), path


def call(g, op, key="k", close=False, **headers):
    h = {"x-op": op, "x-key": key}
    h.update({f"x-{k}": str(v) for k, v in headers.items()})
    if close:
        h["connection"] = "close"  # a new connection: the kernel spreads them over workers
    r = httpx.get(g.url + "/", headers=h, timeout=IO_TIMEOUT)
    assert r.status_code == 200, r.text
    return r.text


def stored(redis, key, name="fleet"):
    """The value Redis holds for the script's `key` (GET's bulk reply), or None."""
    full = f"gatehouse:lua:{{{name}}}:{key}".encode()
    with socket.create_connection(("127.0.0.1", redis.port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(full), full))
        buf = b""
        while b"\r\n" not in buf or (buf.startswith(b"$") and not buf.startswith(b"$-1") and
                                      len(buf) < buf.index(b"\r\n") + 2 +
                                      int(buf[1:buf.index(b"\r\n")]) + 2):
            chunk = s.recv(4096)
            assert chunk, "redis closed the connection"
            buf += chunk
    if buf.startswith(b"$-1"):
        return None
    head = buf.index(b"\r\n")
    return buf[head + 2:head + 2 + int(buf[1:head])]


def test_two_gateways_share_a_counter_exactly(gatehouse, tmp_path, echo, redis):
    cfg, _ = config(tmp_path, echo, redis)
    ghs = [gatehouse(cfg, workers=2, name=f"g{i}") for i in range(2)]
    seen, errors = [], []
    lock = threading.Lock()

    def run(g):
        try:
            for _ in range(25):
                text = call(g, "incr", key="hits", close=True)
                with lock:
                    seen.append(text)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(g,), daemon=True) for g in ghs for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    # Each increment ran atomically in Redis: every total from 1 to 100 was seen exactly once.
    assert sorted(int(s.split(":")[1]) for s in seen) == list(range(1, 101)), seen
    assert all(s.startswith("number:") for s in seen)
    assert stored(redis, "hits") == b"n100"


def test_values_keep_their_type_and_the_calls_mirror_the_local_dictionary(
        gatehouse, tmp_path, echo, redis):
    cfg, _ = config(tmp_path, echo, redis)
    g = gatehouse(cfg, workers=1)
    assert call(g, "get", key="none") == "nil:nil"
    assert call(g, "set", key="n", type="number", value="2.5") == "boolean:true"
    assert call(g, "get", key="n") == "number:2.5"
    assert call(g, "incr", key="n", by="0.5") == "number:3"
    assert call(g, "set", key="s", type="string", value="hello") == "boolean:true"
    assert call(g, "get", key="s") == "string:hello"
    assert call(g, "incr", key="s") == "nil:nil string:not a number"
    assert call(g, "set", key="b", type="boolean", value="false") == "boolean:true"
    assert call(g, "get", key="b") == "boolean:false"
    assert call(g, "add", key="b", type="string", value="x") == "boolean:false string:exists"
    assert call(g, "add", key="new", type="string", value="x") == "boolean:true"
    assert call(g, "delete", key="new") == "boolean:true"
    assert call(g, "get", key="new") == "nil:nil"
    # A value another tool wrote (no type tag) reads as a string; a number written so still
    # counts.
    assert resp_command(redis.port, "SET", "gatehouse:lua:{fleet}:raw", "41") == b"+OK"
    assert call(g, "get", key="raw") == "string:41"
    assert call(g, "incr", key="raw") == "number:42"
    # on_response_headers can wait too; on_log cannot, and says so.
    r = httpx.get(g.url + "/", timeout=IO_TIMEOUT)
    assert r.headers["x-seen"] == "nil:nil"
    wait_until(lambda: "on_log global: nil:nil string:gh.global through redis is available in"
               in g.stderr(), message="the on_log line")


def test_ttls_expire_in_redis(gatehouse, tmp_path, echo, redis):
    cfg, _ = config(tmp_path, echo, redis)
    g = gatehouse(cfg, workers=1)
    # Long enough that the next call finds it even on a slow (sanitizer) build.
    assert call(g, "set", key="t", type="string", value="soon", ttl="3") == "boolean:true"
    assert call(g, "add", key="t", type="string", value="x", ttl="5") == "boolean:false string:exists"
    assert call(g, "incr", key="w", ttl="600") == "number:1"
    assert call(g, "incr", key="w", ttl="1") == "number:2"  # the window keeps its first ttl
    pttl = int(resp_command(redis.port, "PTTL", "gatehouse:lua:{fleet}:w")[1:])
    assert 1000 < pttl <= 600_000
    assert call(g, "incr", key="forever") == "number:1"
    assert resp_command(redis.port, "PTTL", "gatehouse:lua:{fleet}:forever") == b":-1"
    wait_until(lambda: call(g, "get", key="t") == "nil:nil", 30, message="the ttl to expire")
    assert call(g, "add", key="t", type="string", value="again") == "boolean:true"


@pytest.mark.parametrize("mode", ["error", "fallback"])
def test_redis_down_gives_the_configured_failure(gatehouse, tmp_path, echo, redis, mode):
    cfg, _ = config(tmp_path, echo, redis, on_redis_error=mode)
    g = gatehouse(cfg, workers=1)
    assert call(g, "incr", key="c") == "number:1"
    redis.kill()
    down = [call(g, "incr", key="c") for _ in range(3)]
    if mode == "error":
        assert all(d.startswith("nil:nil string:redis: ") for d in down), down
    else:
        # The process's own dictionary takes the calls: it never saw Redis's count.
        assert down == ["number:1", "number:2", "number:3"], down
    # The gateway keeps serving, and finds Redis again (empty: nothing was persisted).
    redis.start(port=redis.port)
    # In fallback mode the local dictionary answers "number:1" too until the client reconnects,
    # so wait for the key to appear in Redis itself: the first increment that reaches it.
    wait_until(lambda: call(g, "incr", key="back") and stored(redis, "back") is not None, 30,
               message="gh.global to reach Redis again")
    assert stored(redis, "back") == b"n1"


def test_values_survive_a_reload_and_a_restart(gatehouse, tmp_path, echo, redis):
    cfg, path = config(tmp_path, echo, redis)
    g = gatehouse(cfg, workers=2, name="first")
    assert call(g, "set", key="plan", type="string", value="gold") == "boolean:true"
    assert call(g, "incr", key="n") == "number:1"
    # A changed script with the same name finds the values.
    path.write_text(SCRIPT.replace("gh.respond(200, r)", "gh.respond(200, 'v2 ' .. r)"))
    assert g.reload() == "success"
    assert call(g, "get", key="plan") == "v2 string:gold"
    assert call(g, "incr", key="n") == "v2 number:2"
    # So does another gateway process (a restart, or another member of the fleet).
    other = gatehouse(cfg, workers=1, name="second")
    assert call(other, "incr", key="n") == "v2 number:3"
    # A different script name is a different dictionary (config() writes the first script).
    cfg2, _ = config(tmp_path, echo, redis, name="other")
    assert call(gatehouse(cfg2, workers=1, name="third"), "get", key="plan") == "nil:nil"


def test_redis_options_are_checked(tmp_path):
    def validate(policy):
        route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up",
                 "policies": [{"name": "lua", "config": {"source": "function on_log() end",
                                                         **policy}}]}
        cfg = simple_config({"name": "up", "endpoints": ["127.0.0.1:1"]}, routes=[route],
                            listeners=[{"name": "main", "address": "127.0.0.1", "port": 1}])
        path = tmp_path / "gatehouse.yaml"
        path.write_text(json.dumps(cfg))
        out = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True,
                             text=True, timeout=60)
        return out.returncode, out.stdout + out.stderr

    assert validate({"redis": {"address": "127.0.0.1:6379"}, "on_redis_error": "fallback"})[0] == 0
    code, out = validate({"on_redis_error": "fallback"})
    assert code != 0 and "on_redis_error: needs redis" in out
    code, out = validate({"redis": {"address": "127.0.0.1:6379"}, "on_redis_error": "open"})
    assert code != 0 and "on_redis_error" in out
    code, out = validate({"redis": {"adress": "127.0.0.1:6379"}})
    assert code != 0 and "adress" in out
