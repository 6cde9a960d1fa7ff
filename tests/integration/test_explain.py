"""`gatehouse explain` (issue 16, item 3): the CLI against a config with several routes, and
POST /api/v1/explain against a running gateway with live host health."""
import http.client
import json
import subprocess

from support import GATEHOUSE_BIN, cluster, wait_until

KEY = "k1"  # printf %s k1 | sha256sum
KEY_SHA256 = "6ab9f1eb8f7d3388f4f9d586f66e99fd54080df2c446f0e58668b09c08a16dd0"

CONFIG = {
    "watch": False,
    "listeners": [{"name": "public", "address": "127.0.0.1", "port": 18080,
                   "virtual_hosts": ["api"]},
                  {"name": "ops", "address": "127.0.0.1", "port": 18081,
                   "virtual_hosts": ["ops"]}],
    "admin": {"enabled": False},
    "consumers": [{"name": "alice", "groups": ["staff"], "credentials": {"api_keys": [{"sha256": KEY_SHA256}]}}],
    "clusters": [
        {"name": "users", "endpoints": ["127.0.0.1:9001", "127.0.0.1:9002"]},
        {"name": "users-v2", "endpoints": ["127.0.0.1:9003"]},
        {"name": "billing", "endpoints": ["127.0.0.1:9004"],
         "retry": {"attempts": 3, "on": ["connect-failure", "503"]}},
    ],
    "virtual_hosts": [
        {"name": "api", "domains": ["api.example.com"],
         "policies": [{"name": "cors", "config": {"origins": ["https://app.example.com"]}}],
         "routes": [
             {"name": "writes", "match": {"path_prefix": "/users/", "methods": ["POST"]},
              "direct_response": {"status": 403, "body": "read only"}},
             {"name": "beta", "match": {"path_prefix": "/users/",
                                        "headers": [{"name": "x-beta", "exact": "1"}]},
              "cluster": "users-v2"},
             {"name": "users", "match": {"path_template": "/users/{id}"},
              "clusters": [{"name": "users", "weight": 3}, {"name": "users-v2", "weight": 1}],
              "canary": [{"cookie": "canary", "cluster": "users-v2"}], "timeout": "4s"},
             {"name": "billing", "match": {"path_prefix": "/billing/"}, "cluster": "billing",
              "policies": [{"name": "key_auth", "config": {}},
                           {"name": "rate_limit",
                            "config": {"key": ["consumer"],
                                       "limits": [{"rate": "5/s", "burst": 10}]}}]},
         ]},
        {"name": "ops", "domains": ["*"],
         "policies": [{"name": "ip_restriction", "config": {"allow": ["10.0.0.0/8"]}}],
         "routes": [{"name": "ops-all", "cluster": "billing"}]},
    ],
}


def run_cli(tmp_path, *args, config=None):
    path = tmp_path / "explain.yaml"
    path.write_text(json.dumps(config or CONFIG))
    p = subprocess.run([GATEHOUSE_BIN, "explain", "-c", str(path), *args],
                       capture_output=True, text=True, timeout=60)
    return p


def test_cli_text_names_every_earlier_route_and_why(tmp_path):
    p = run_cli(tmp_path, "--url", "http://api.example.com:18080/users/42",
                "--header", "Origin: https://app.example.com")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Listener:     'public' 127.0.0.1:18080" in out, out
    assert "Virtual host: 'api' by exact domain 'api.example.com'" in out, out
    # The routes before the match, each with its reason, in written order.
    lines = [ln.strip() for ln in out.splitlines()]
    assert "no    writes  method: method GET is not one of POST" in lines, out
    assert ("no    beta    header: header 'x-beta' is absent (wants exact '1')" in lines), out
    assert any(ln.startswith("MATCH users") and "params: id=42" in ln for ln in lines), out
    assert "origin 'https://app.example.com' allowed" in out, out
    assert "weighted: users weight 3 (75.0%)" in out, out
    assert "canary: cookie canary present -> users-v2" in out, out
    assert "connect 5s, response 4s" in out, out
    assert "Outcome:      forwarded to one of clusters 'users'" in out, out


def test_cli_json_from_a_curl_line(tmp_path):
    p = run_cli(tmp_path, "--json", "--", "curl", "-s", "-H", f"x-api-key: {KEY}",
                "-H", "Cookie: canary=1", "http://api.example.com:18080/billing/invoices?page=2")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["request"]["path"] == "/billing/invoices"
    assert j["request"]["query"] == "page=2"
    assert [r["name"] for r in j["routes"]] == ["writes", "beta", "users", "billing"]
    assert [r.get("miss") for r in j["routes"]] == ["method", "path", "path", None]
    assert [(p["name"], p["decision"]) for p in j["policies"]] == [
        ("cors", "continue"), ("key_auth", "continue"), ("rate_limit", "depends")]
    assert "consumer 'alice'" in j["policies"][1]["detail"]
    assert "5/s (burst 10) per consumer" in j["policies"][2]["detail"]
    assert j["upstream"]["clusters"][0]["name"] == "billing"
    assert j["upstream"]["clusters"][0]["pick"] == "127.0.0.1:9004"
    assert j["timeouts"]["retry"]["attempts"] == 3


def test_cli_missing_key_and_ip_rule_answer_before_the_upstream(tmp_path):
    p = run_cli(tmp_path, "--json", "--url", "http://api.example.com:18080/billing/x")
    j = json.loads(p.stdout)
    assert j["outcome"]["status"] == 401
    assert j["policies"][2]["decision"] == "not reached"
    assert "upstream" not in j

    p = run_cli(tmp_path, "--json", "--listener", "ops", "--path", "/anything",
                "--client-ip", "192.0.2.7")
    j = json.loads(p.stdout)
    assert j["listener"]["name"] == "ops"
    assert j["virtual_host"] == "ops"
    assert j["policies"][0]["status"] == 403
    assert j["outcome"]["status"] == 403


def test_cli_no_route_bad_target_and_usage_errors(tmp_path):
    j = json.loads(run_cli(tmp_path, "--json", "--url", "http://api.example.com:18080/x").stdout)
    assert j["outcome"]["status"] == 404
    assert len(j["routes"]) == 4
    j = json.loads(run_cli(tmp_path, "--json", "--url", "http://elsewhere:18080/x").stdout)
    assert j["outcome"]["status"] == 404
    assert all(not v["selected"] for v in j["virtual_hosts"])
    p = run_cli(tmp_path, "--url")
    assert p.returncode == 2 and "needs a value" in p.stderr
    p = run_cli(tmp_path, "--bogus", "1")
    assert p.returncode == 2 and "unknown option '--bogus'" in p.stderr
    p = run_cli(tmp_path, config={"listeners": "nope"})
    assert p.returncode == 1 and "explain.yaml" in p.stderr


def post_explain(admin_port, body: bytes, query=""):
    c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    try:
        c.request("POST", "/api/v1/explain" + query, body=body,
                  headers={"content-type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_admin_explain_sees_live_host_health(gatehouse, echo_factory):
    a = echo_factory("a")
    b = echo_factory("b")
    hc = {"type": "tcp", "interval": "100ms", "timeout": "100ms", "unhealthy_threshold": 1}
    gh = gatehouse({"clusters": [cluster("svc", a, b, health_check=hc)],
                    "routes": [{"name": "all", "match": {"path_prefix": "/"},
                                "cluster": "svc"}]})
    req = json.dumps({"method": "GET", "url": "/x", "headers": {"host": "any"}}).encode()
    status, body = post_explain(gh.admin_port, req)
    assert status == 200, body
    j = json.loads(body)
    assert j["live_health"] is True
    assert j["route"]["name"] == "all"
    hosts = j["upstream"]["clusters"][0]["hosts"]
    assert [h["state"] for h in hosts] == ["available", "available"]

    b.stop()

    def b_down():
        s, out = post_explain(gh.admin_port, req)
        c = json.loads(out)["upstream"]["clusters"][0]
        states = {h["name"]: h["state"] for h in c["hosts"]}
        return c if states[b.endpoint] == "failing health checks" else None
    c = wait_until(b_down, message="explain to show b failing its health checks")
    assert c["pick"] == a.endpoint
    # Explaining moves nothing: no request was proxied, none counted.
    assert gh.metrics().total("gatehouse_requests_total") == 0

    status, text = post_explain(gh.admin_port, req, "?format=text")
    assert status == 200
    assert b"failing health checks" in text and b"Outcome:" in text


def test_admin_explain_rejects_bad_input(gatehouse, echo):
    gh = gatehouse({"clusters": [cluster("svc", echo)]})
    assert post_explain(gh.admin_port, b"{not json")[0] == 400
    status, body = post_explain(gh.admin_port, b'{"method": "GET"}')
    assert status == 400 and b"'url'" in body
    # Over the explain body cap: a 413 that says why.
    status, body = post_explain(gh.admin_port, b"x" * (64 * 1024 + 1))
    assert status == 413 and b"64 KiB" in body
    c = http.client.HTTPConnection("127.0.0.1", gh.admin_port, timeout=10)
    c.request("GET", "/api/v1/explain")
    r = c.getresponse()
    assert r.status == 405
    c.close()
