"""The versioned admin API (/api/v1, docs/admin-api.md): read endpoints, transactional config
writes (PATCH, PUT, dry run, refusal, If-Match, rollback, write-back to the file), host drain,
log reopen and cache purge, bearer-token and mTLS roles, and the audit log."""
import http.client
import json
import signal
import ssl
import subprocess
import time

import pytest

from support import (GATEHOUSE_BIN, IO_TIMEOUT, START_TIMEOUT, Gatehouse, cluster, http_get,
                     simple_config, stop_process, wait_until)
from support.gatehouse import Metrics, parse_metrics
from test_cert_auth import make_cert

WRITE_TOKEN = "w-0123456789abcdef0123456789"
READ_TOKEN = "r-0123456789abcdef0123456789"


class AdminGatehouse(Gatehouse):
    """A Gatehouse whose admin listener needs credentials (and maybe TLS) for /metrics."""

    token = None
    tls_ctx = None

    def admin(self, method, path, body=None, token=None, headers=None, ctx=None):
        """One admin request; returns (status, headers dict, parsed JSON or text)."""
        ctx = ctx or self.tls_ctx
        if ctx is not None:
            c = http.client.HTTPSConnection("127.0.0.1", self.admin_port, context=ctx,
                                            timeout=IO_TIMEOUT)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=IO_TIMEOUT)
        h = dict(headers or {})
        token = token if token is not None else self.token
        if token:
            h["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)) or body is None and method in ("PATCH",):
            body = json.dumps(body)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read().decode()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = data
            return r.status, hdrs, parsed
        finally:
            c.close()

    def metrics(self):
        status, _, body = self.admin("GET", "/metrics")
        assert status == 200, f"/metrics answered {status}"
        return Metrics(parse_metrics(body))

    def wait_ready(self, timeout=START_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"gatehouse exited with {self.proc.returncode}")
            return self.admin("GET", "/readyz")[0] == 200
        wait_until(ready, timeout, message="/readyz")


@pytest.fixture
def admin_gh(tmp_path):
    """Factory: admin_gh(config, token=..., tls_ctx=...) -> a started AdminGatehouse."""
    started = []

    def make(config, token=None, tls_ctx=None, workers=2):
        g = AdminGatehouse(tmp_path, config, workers=workers, name=f"gh{len(started)}")
        g.token, g.tls_ctx = token, tls_ctx
        started.append(g)
        return g.start()
    yield make
    for g in started:
        rc = g.stop()
        err = g.stderr()
        print(f"--- gatehouse {g.dir.name} exit={rc} stderr (tail) ---\n{err[-3000:]}")
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in err, f"sanitizer report in gatehouse stderr:\n{err[-6000:]}"
        assert rc == 0, f"gatehouse exited with {rc}"


def tokens_file(tmp_path):
    p = tmp_path / "admin-tokens"
    p.write_text(f"# name role token\nops write {WRITE_TOKEN}\nviewer read {READ_TOKEN}\n")
    return str(p)


def two_cluster_config(tmp_path, echo, echo2, **admin):
    c = simple_config(cluster("a", echo), cluster("b", echo2),
                      routes=[{"name": "all", "match": {"path_prefix": "/"}, "cluster": "a"}])
    c["admin"] = {"tokens_file": tokens_file(tmp_path),
                  "audit_log": str(tmp_path / "audit.log"), **admin}
    return c


def upstream_of(gh, path="/"):
    status, body = http_get(gh.port, path)
    assert status == 200, (status, body)
    return json.loads(body)["upstream"]


def audit_lines(tmp_path):
    p = tmp_path / "audit.log"
    return [json.loads(ln) for ln in p.read_text().splitlines()] if p.exists() else []


def validate(path):
    return subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True,
                          timeout=60)


def test_read_endpoints(admin_gh, echo, echo2, tmp_path):
    config = two_cluster_config(tmp_path, echo, echo2)
    config["consumers"] = [{"name": "acme", "groups": ["partners"], "credentials": {
        "api_keys": [{"sha256": "cd" * 32}],
        "basic": [{"username": "acme", "password": "sha256:salt:" + "ab" * 32}]}}]
    config["routes"][0]["policies"] = [{"name": "key_auth", "config": {}}]
    gh = admin_gh(config, token=READ_TOKEN)

    status, headers, routes = gh.admin("GET", "/api/v1/routes")
    assert status == 200
    assert routes["routes"][0]["name"] == "all"
    assert routes["routes"][0]["cluster"] == "a"
    assert routes["routes"][0]["source"]["file"] == str(gh.config_path)
    assert routes["routes"][0]["source"]["line"] > 0

    status, _, clusters = gh.admin("GET", "/api/v1/clusters")
    assert status == 200
    a = next(c for c in clusters["clusters"] if c["name"] == "a")
    host = a["hosts"][0]
    assert host["host"] == echo.endpoint
    for field in ("healthy", "ejected", "drained", "weight", "in_flight", "available"):
        assert field in host, field
    assert host["healthy"] and host["available"] and not host["drained"]

    status, _, consumers = gh.admin("GET", "/api/v1/consumers")
    assert status == 200
    text = json.dumps(consumers)
    assert consumers["consumers"][0]["name"] == "acme"
    assert consumers["consumers"][0]["credentials"]["api_keys"] == 1
    assert "cdcd" not in text and "sha256:" not in text and "abab" not in text

    status, _, policies = gh.admin("GET", "/api/v1/policies")
    assert status == 200
    assert "key_auth" in policies["available"]
    assert policies["in_use"][0]["name"] == "key_auth"
    assert policies["in_use"][0]["route"] == "all"

    status, _, listeners = gh.admin("GET", "/api/v1/listeners")
    assert status == 200
    assert listeners["listeners"][0]["port"] == gh.port

    status, headers, cfg = gh.admin("GET", "/api/v1/config")
    assert status == 200
    assert cfg["source"] == str(gh.config_path)
    assert headers["etag"] == f'"{cfg["generation"]}"'
    assert cfg["config"]["routes"][0]["cluster"] == "a"
    assert cfg["lines"]["clusters"][0]["name"] == "a" and cfg["lines"]["clusters"][0]["line"] > 0

    status, _, gens = gh.admin("GET", "/api/v1/config/generations")
    assert status == 200
    assert gens["generations"][-1]["generation"] == cfg["generation"]
    assert gens["generations"][-1]["origin"] == "startup"

    # Unknown endpoint and wrong method.
    assert gh.admin("GET", "/api/v1/nope")[0] == 404
    assert gh.admin("DELETE", "/api/v1/routes")[0] == 405


def test_certificates_endpoint(admin_gh, echo, tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    crt, key = make_cert(d, "server", "gw.test", san="DNS:gw.test,DNS:api.gw.test")
    config = simple_config(cluster("a", echo), listeners=[
        {"name": "main", "address": "127.0.0.1", "port": "@main"},
        {"name": "tls", "address": "127.0.0.1", "port": "@tls",
         "tls": {"certificates": [{"cert": crt, "key": key}]}}])
    gh = admin_gh(config)  # no access configured: loopback reads
    status, _, body = gh.admin("GET", "/api/v1/certificates")
    assert status == 200, body
    cert = body["certificates"][0]
    assert cert["listener"] == "tls"
    assert cert["subject"] == "CN=gw.test"
    assert cert["sans"] == ["DNS:gw.test", "DNS:api.gw.test"]
    assert cert["not_after"].endswith("Z")
    assert 0 <= cert["expires_in_days"] <= 2 and cert["expired"] is False


def test_patch_changes_routing_and_writes_the_file_back(admin_gh, echo, echo2, tmp_path):
    gh = admin_gh(two_cluster_config(tmp_path, echo, echo2), token=WRITE_TOKEN)
    assert upstream_of(gh) == "echo-a"
    _, headers, cfg = gh.admin("GET", "/api/v1/config")
    gen0 = cfg["generation"]

    status, headers, body = gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "b"},
                                     headers={"If-Match": f'"{gen0}"'})
    assert status == 200, body
    assert body["applied"] is True
    assert body["generation"] > gen0 and body["generation_before"] == gen0
    assert headers["etag"] == f'"{body["generation"]}"'
    assert "-    cluster: a" in body["diff"] and "+    cluster: b" in body["diff"]
    assert upstream_of(gh) == "echo-b"  # in effect at once: the swap happened before the reply

    # The file now holds readable block-style YAML that validates and says the same.
    text = gh.config_path.read_text()
    assert "cluster: b" in text and "{" not in text.split("\n", 1)[0]
    v = validate(gh.config_path)
    assert v.returncode == 0, v.stdout + v.stderr
    assert not list(gh.dir.glob("*.tmp.*")), "temp file left behind"

    # A new cluster through a PATCH on clusters/NAME, then routed to.
    status, _, body = gh.admin("PATCH", "/api/v1/config/clusters/c",
                               {"endpoints": [echo.endpoint]})
    assert status == 200, body
    status, _, body = gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "c"})
    assert status == 200, body
    assert upstream_of(gh) == "echo-a"
    status, _, gens = gh.admin("GET", "/api/v1/config/generations")
    assert [g["origin"] for g in gens["generations"]][-3:] == [
        "api PATCH /routes/all", "api PATCH /clusters/c", "api PATCH /routes/all"]


def test_dry_run_validates_and_changes_nothing(admin_gh, echo, echo2, tmp_path):
    gh = admin_gh(two_cluster_config(tmp_path, echo, echo2), token=WRITE_TOKEN)
    before = gh.config_path.read_bytes()
    gen0 = gh.admin("GET", "/api/v1/config")[2]["generation"]
    status, headers, body = gh.admin("PATCH", "/api/v1/config/routes/all?dry_run=1",
                                     {"cluster": "b"})
    assert status == 200, body
    assert body["dry_run"] is True and body["valid"] is True and body["applied"] is False
    assert "+    cluster: b" in body["diff"]
    assert body["generation"] == gen0
    assert upstream_of(gh) == "echo-a"
    assert gh.config_path.read_bytes() == before
    # A dry run of an invalid change is refused the same way as a real one.
    status, _, body = gh.admin("PATCH", "/api/v1/config/routes/all?dry_run=1",
                               {"cluster": "nope"})
    assert status == 422


def test_invalid_patch_is_refused_as_a_whole(admin_gh, echo, echo2, tmp_path):
    gh = admin_gh(two_cluster_config(tmp_path, echo, echo2), token=WRITE_TOKEN)
    before = gh.config_path.read_bytes()
    gen0 = gh.admin("GET", "/api/v1/config")[2]["generation"]
    # Two changes in one patch, one of them invalid: neither is applied.
    status, _, body = gh.admin("PATCH", "/api/v1/config",
                               {"routes": [{"name": "all", "match": {"path_prefix": "/"},
                                            "cluster": "payments"}],
                                "timeouts": {"upstream_response": "2s"}})
    assert status == 422, body
    assert body["applied"] is False
    err = body["errors"][0]
    assert err["file"] == str(gh.config_path)
    assert err["path"] == "routes[0].cluster" and "payments" in err["message"]
    assert err["line"] > 0
    assert upstream_of(gh) == "echo-a"
    assert gh.config_path.read_bytes() == before
    assert gh.admin("GET", "/api/v1/config")[2]["generation"] == gen0
    # Malformed requests: not JSON, a path that is not there, a PUT that is not YAML.
    assert gh.admin("PATCH", "/api/v1/config/routes/all", "{nope")[0] == 400
    assert gh.admin("PATCH", "/api/v1/config/clusters/zz/lb", "\"random\"")[0] == 404
    status, _, body = gh.admin("PUT", "/api/v1/config", "routes: [unclosed\n")
    assert status == 422 and body["errors"], body
    assert gh.config_path.read_bytes() == before


def test_if_match_prevents_lost_updates(admin_gh, echo, echo2, tmp_path):
    gh = admin_gh(two_cluster_config(tmp_path, echo, echo2), token=WRITE_TOKEN)
    gen0 = gh.admin("GET", "/api/v1/config")[2]["generation"]
    assert gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "b"},
                    headers={"If-Match": f'"{gen0}"'})[0] == 200
    # A second writer that read generation gen0 loses: 412 and nothing changes.
    status, headers, body = gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "a"},
                                     headers={"If-Match": f'"{gen0}"'})
    assert status == 412, body
    assert headers["etag"] == f'"{body["generation"]}"' and body["generation"] != gen0
    assert upstream_of(gh) == "echo-b"


def test_put_and_rollback(admin_gh, echo, echo2, tmp_path):
    gh = admin_gh(two_cluster_config(tmp_path, echo, echo2), token=WRITE_TOKEN)
    gen0 = gh.admin("GET", "/api/v1/config")[2]["generation"]
    original = gh.config_path.read_text()
    # A whole config as YAML (kept as sent, comments included).
    yaml_text = original  # JSON is YAML; change the route's cluster in the text
    new = json.loads(original)
    new["routes"][0]["cluster"] = "b"
    yaml_body = "# edited through the admin API\n" + json.dumps(new, indent=2) + "\n"
    status, _, body = gh.admin("PUT", "/api/v1/config", yaml_body,
                               headers={"Content-Type": "application/yaml"})
    assert status == 200, body
    assert upstream_of(gh) == "echo-b"
    assert gh.config_path.read_text() == yaml_body

    status, _, gen = gh.admin("GET", f"/api/v1/config/generations/{gen0}")
    assert status == 200 and gen["yaml"] == yaml_text
    assert "cluster" in gen["diff_to_current"]
    status, _, body = gh.admin("POST", "/api/v1/config/rollback", {"generation": gen0})
    assert status == 200, body
    assert body["generation"] > gen0
    assert upstream_of(gh) == "echo-a"
    assert gh.config_path.read_text() == original
    assert gh.admin("POST", "/api/v1/config/rollback", {"generation": 9999})[0] == 404
    assert gh.admin("GET", "/api/v1/config/generations/9999")[0] == 404


def test_token_roles_and_audit(admin_gh, echo, echo2, tmp_path):
    gh = admin_gh(two_cluster_config(tmp_path, echo, echo2), token=WRITE_TOKEN)
    # No token: 401 everywhere but the probes.
    status, headers, _ = gh.admin("GET", "/api/v1/routes", token="")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert gh.admin("GET", "/metrics", token="")[0] == 401
    assert gh.admin("GET", "/healthz", token="")[0] == 200
    assert gh.admin("GET", "/api/v1/routes", token="wrong-token-000000000000")[0] == 401
    # A read token reads but cannot write.
    assert gh.admin("GET", "/api/v1/routes", token=READ_TOKEN)[0] == 200
    status, _, body = gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "b"},
                               token=READ_TOKEN)
    assert status == 403, body
    assert gh.admin("POST", "/cache/purge?prefix=/", token=READ_TOKEN)[0] == 403
    assert upstream_of(gh) == "echo-a"
    assert gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "b"})[0] == 200

    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(audit_lines(tmp_path)),
                       message="two audit lines")
    denied = next(ln for ln in lines if ln["status"] == 403)
    assert denied["who"] == "token:viewer" and denied["result"] == "denied"
    ok = next(ln for ln in lines if ln["status"] == 200)
    assert ok["who"] == "token:ops" and ok["method"] == "PATCH"
    assert ok["path"] == "/api/v1/config/routes/all"
    assert ok["generation_after"] > ok["generation_before"]
    assert "+1 -1 lines" in ok["summary"]


def test_tokens_from_environment(admin_gh, echo, tmp_path, monkeypatch):
    monkeypatch.setenv("GH_TEST_ADMIN_TOKENS", f"ci write {WRITE_TOKEN}; dash read {READ_TOKEN}")
    config = simple_config(cluster("a", echo))
    config["admin"] = {"tokens_env": "GH_TEST_ADMIN_TOKENS",
                       "audit_log": str(tmp_path / "audit.log")}
    gh = admin_gh(config, token=READ_TOKEN)
    assert gh.admin("GET", "/api/v1/clusters")[0] == 200
    assert gh.admin("POST", "/api/v1/logs/reopen")[0] == 403
    assert gh.admin("POST", "/api/v1/logs/reopen", token=WRITE_TOKEN)[0] == 200
    assert wait_until(lambda: any(ln["who"] == "token:ci" for ln in audit_lines(tmp_path)))


def test_no_access_configured_is_loopback_read_only(admin_gh, echo, tmp_path):
    gh = admin_gh(simple_config(cluster("a", echo)))
    assert gh.admin("GET", "/api/v1/routes")[0] == 200
    assert gh.admin("GET", "/metrics")[0] == 200
    status, _, body = gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "a"})
    assert status == 403 and "write role" in body["error"]
    assert gh.admin("POST", "/api/v1/clusters/a/hosts/x/drain")[0] == 403


def test_drain_and_undrain_a_host(admin_gh, echo, echo2, tmp_path):
    config = simple_config(cluster("ab", echo, echo2))
    config["admin"] = {"tokens_file": tokens_file(tmp_path)}
    gh = admin_gh(config, token=WRITE_TOKEN)
    seen = {upstream_of(gh) for _ in range(8)}
    assert seen == {"echo-a", "echo-b"}
    status, _, body = gh.admin("POST", f"/api/v1/clusters/ab/hosts/{echo.endpoint}/drain")
    assert status == 200 and body["drained"] is True, body
    # Workers rebuild their view on the next pick: from then on only echo-b.
    assert {upstream_of(gh) for _ in range(20)} == {"echo-b"}
    hosts = gh.admin("GET", "/api/v1/clusters")[2]["clusters"][0]["hosts"]
    drained = next(h for h in hosts if h["host"] == echo.endpoint)
    assert drained["drained"] is True and drained["available"] is False
    # Even with every other host drained too, a drained host gets nothing (no panic routing).
    gh.admin("POST", f"/api/v1/clusters/ab/hosts/{echo2.endpoint}/drain")
    assert http_get(gh.port, "/")[0] == 503
    gh.admin("POST", f"/api/v1/clusters/ab/hosts/{echo2.endpoint}/undrain")
    assert gh.admin("POST", f"/api/v1/clusters/ab/hosts/{echo.endpoint}/undrain")[0] == 200
    assert {upstream_of(gh) for _ in range(8)} == {"echo-a", "echo-b"}
    assert gh.admin("POST", "/api/v1/clusters/zz/hosts/x/drain")[0] == 404
    assert gh.admin("POST", "/api/v1/clusters/ab/hosts/10.0.0.1:1/drain")[0] == 404


def test_logs_reopen_and_cache_purge(admin_gh, echo, tmp_path):
    config = simple_config(cluster("a", echo))
    config["admin"] = {"tokens_file": tokens_file(tmp_path)}
    gh = admin_gh(config, token=WRITE_TOKEN)
    assert http_get(gh.port, "/")[0] == 200
    wait_until(lambda: gh.access_log_path.exists() and gh.access_log_path.stat().st_size > 0)
    rotated = gh.access_log_path.with_suffix(".1")
    gh.access_log_path.rename(rotated)
    status, _, body = gh.admin("POST", "/api/v1/logs/reopen")
    assert status == 200 and body["reopened"] is True
    assert http_get(gh.port, "/again")[0] == 200
    gh.wait_log(lambda e: e.get("path") == "/again")  # written to the new file
    status, _, body = gh.admin("POST", "/api/v1/cache/purge", {"prefix": "/"})
    assert status == 200 and body["purged"] == 0, body
    assert gh.admin("POST", "/api/v1/cache/purge", {"colour": "x"})[0] == 400


def test_mtls_roles(admin_gh, echo, echo2, tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    ca = make_cert(d, "ca", "Admin CA")
    server = make_cert(d, "admin", "admin.test", san="DNS:admin.test")
    ops = make_cert(d, "ops", "ops.test", ca=ca)
    viewer = make_cert(d, "viewer", "viewer.test", san="URI:spiffe://test/viewer", ca=ca)
    stranger = make_cert(d, "stranger", "stranger.test", ca=ca)
    config = simple_config(cluster("a", echo), cluster("b", echo2),
                           routes=[{"name": "all", "match": {"path_prefix": "/"},
                                    "cluster": "a"}])
    config["admin"] = {
        "tls": {"certificates": [{"cert": server[0], "key": server[1]}],
                "client_auth": "require", "client_ca": ca[0]},
        "cert_roles": [{"match": "ops.test", "role": "write"},
                       {"match": "URI:spiffe://test/viewer", "role": "read"}],
        "audit_log": str(tmp_path / "audit.log")}

    def ctx(cert):
        c = ssl.create_default_context()
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        c.load_cert_chain(cert[0], cert[1])
        return c
    gh = admin_gh(config, tls_ctx=ctx(ops))
    assert gh.admin("GET", "/api/v1/routes", ctx=ctx(viewer))[0] == 200
    assert gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "b"},
                    ctx=ctx(viewer))[0] == 403
    assert gh.admin("GET", "/api/v1/routes", ctx=ctx(stranger))[0] == 401
    status, _, body = gh.admin("PATCH", "/api/v1/config/routes/all", {"cluster": "b"})
    assert status == 200, body
    assert upstream_of(gh) == "echo-b"
    ok = wait_until(lambda: next((ln for ln in audit_lines(tmp_path) if ln["status"] == 200),
                                 None))
    assert ok["who"] == "cert:CN=ops.test"
