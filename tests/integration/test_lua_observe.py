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
