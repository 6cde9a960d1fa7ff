"""Policy `lua`, what a script leaves for others: gh.vars in RequestContext::vars (read by a
later policy and printed by the access log's `vars` field) and custom metrics declared in the
policy's config, exported on /metrics."""
import httpx

from support import IO_TIMEOUT, cluster, simple_config


def test_vars_reach_a_later_policy_and_the_access_log(gatehouse, tmp_path, echo):
    first = tmp_path / "first.lua"
    first.write_text("""
function on_request_headers()
  gh.vars.tenant = gh.req.get_header("x-tenant")
  gh.vars.n = 41
end
function on_log()
  gh.vars.final = tostring(gh.resp.get_status())
end
""")
    second = tmp_path / "second.lua"
    second.write_text("""
function on_request_headers()
  gh.req.set_header("x-seen-tenant", gh.vars.tenant)
  gh.vars.n = gh.vars.n + 1
  gh.vars.gone = "x"
  gh.vars.gone = nil
end
""")
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up", "policies": [
        {"name": "lua", "config": {"file": str(first), "name": "first"}},
        {"name": "lua", "config": {"file": str(second), "name": "second"}}]}
    cfg = simple_config(cluster("up", echo), routes=[route],
                        access_log={"fields": ["request_id", "path", "status", "vars"]})
    g = gatehouse(cfg)
    r = httpx.get(g.url + "/t", headers={"x-tenant": "acme \"q\""}, timeout=IO_TIMEOUT)
    assert r.status_code == 200
    assert dict(r.json()["headers"])["x-seen-tenant"] == 'acme "q"'
    line = g.wait_log(lambda e: e["path"] == "/t")
    assert line["vars"] == {"tenant": 'acme "q"', "n": "42", "final": "200"}
    httpx.get(g.url + "/none", timeout=IO_TIMEOUT)
    g2 = g.wait_log(lambda e: e["path"] == "/none")
    assert g2["vars"]["n"] == "42" and "tenant" not in g2["vars"]


METRIC_SCRIPT = """
function on_request_headers()
  local tenant = gh.req.get_header("x-tenant") or "none"
  local ok, err = gh.metric.incr("tenant_requests", 1, {tenant = tenant, method = gh.req.get_method()})
  gh.req.set_header("x-metric", tostring(ok) .. ":" .. tostring(err))
  gh.metric.incr("bytes_seen", #gh.req.get_path())
  gh.metric.set("last_path_length", #gh.req.get_path())
  if gh.req.get_header("x-undeclared") then gh.metric.incr("nope") end
end
"""

METRICS = [
    {"name": "tenant_requests", "type": "counter", "help": "Requests per tenant.",
     "labels": ["tenant", "method"], "max_series": 2},
    {"name": "bytes_seen"},
    {"name": "last_path_length", "type": "gauge"},
]


def test_custom_metrics_on_the_metrics_page(gatehouse, tmp_path, echo):
    path = tmp_path / "metrics.lua"
    path.write_text(METRIC_SCRIPT)
    route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up", "policies": [
        {"name": "lua", "config": {"file": str(path), "metrics": METRICS}}]}
    g = gatehouse(simple_config(cluster("up", echo), routes=[route]), workers=2)

    def get(p, **headers):
        # A new connection each time: both workers count.
        return httpx.get(g.url + p, headers={"connection": "close", **headers}, timeout=IO_TIMEOUT)

    for _ in range(3):
        assert get("/abc", **{"x-tenant": "acme"}).status_code == 200
    get("/abcd", **{"x-tenant": "beta"})
    r = get("/x", **{"x-tenant": "third"})  # a third series: past max_series
    assert dict(r.json()["headers"])["x-metric"] == "false:too many series"
    m = g.metrics()
    assert m.value("gatehouse_lua_tenant_requests", tenant="acme", method="GET") == 3
    assert m.value("gatehouse_lua_tenant_requests", tenant="beta", method="GET") == 1
    assert m.get_value("gatehouse_lua_tenant_requests", tenant="third", method="GET") is None
    assert m.value("gatehouse_lua_bytes_seen") == 3 * 4 + 5 + 2
    assert m.value("gatehouse_lua_last_path_length") == 2
    page = httpx.get(g.admin_url + "/metrics", timeout=IO_TIMEOUT).text
    assert "# HELP gatehouse_lua_tenant_requests Requests per tenant." in page
    assert "# TYPE gatehouse_lua_last_path_length gauge" in page
    # An undeclared metric is a script error; the counts survive a reload.
    assert get("/", **{"x-undeclared": "1"}).status_code == 500
    assert "no counter 'nope' is declared" in g.stderr()
    assert g.reload() == "success"
    get("/abc", **{"x-tenant": "acme"})
    assert g.metrics().value("gatehouse_lua_tenant_requests", tenant="acme", method="GET") == 4


def test_metric_declarations_are_checked(tmp_path):
    import json
    import subprocess
    from support.common import GATEHOUSE_BIN

    def validate(metrics):
        route = {"name": "api", "match": {"path_prefix": "/"}, "cluster": "up", "policies": [
            {"name": "lua", "config": {"source": "function on_log() end", "metrics": metrics}}]}
        cfg = simple_config({"name": "up", "endpoints": ["127.0.0.1:1"]}, routes=[route],
                            listeners=[{"name": "main", "address": "127.0.0.1", "port": 1}])
        p = tmp_path / "gatehouse.yaml"
        p.write_text(json.dumps(cfg))
        out = subprocess.run([GATEHOUSE_BIN, "validate", str(p)], capture_output=True, text=True,
                             timeout=60)
        return out.returncode, out.stdout + out.stderr
    assert validate([{"name": "ok_name", "labels": ["a"]}])[0] == 0
    for bad, why in [([{"name": "bad-name"}], "is not"),
                     ([{"name": "x", "type": "histogram"}], "expected counter or gauge"),
                     ([{"name": "x", "labels": ["a", "b", "c", "d", "e"]}], "at most 4 labels"),
                     ([{"name": "x"}, {"name": "x"}], "declared twice")]:
        code, text = validate(bad)
        assert code != 0 and why in text, text
