"""routes_from_openapi: the pet shop document (tests/integration/data/petstore_openapi.yaml, 26
operations) generates the routes themselves, against real upstreams: each operation routes by
path template and method to its cluster (default, per tag, per operationId), carries its own
policies (key_auth on a tag, rate_limit on one operation, openapi_validate on all), undefined
paths are 404 and undefined methods 405 with Allow, and a reload picks up a changed
document."""
import hashlib
import json
import pathlib
import subprocess

import httpx

from support import IO_TIMEOUT, cluster, wait_until
from support.common import GATEHOUSE_BIN

SPEC = pathlib.Path(__file__).parent / "data" / "petstore_openapi.yaml"
ADMIN_KEY = "admin-key-1"


def config(spec, echo, echo2, **block):
    return {
        "consumers": [{"name": "ops", "credentials": {"api_keys": [
            {"sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}]}}],
        "clusters": [cluster("main", echo), cluster("store", echo2)],
        "routes_from_openapi": {"spec": str(spec), "cluster": "main", **block},
    }


def request(g, method, path, **kw):
    return httpx.request(method, g.url + path, timeout=IO_TIMEOUT, trust_env=False, **kw)


def test_each_operation_is_a_route_to_its_cluster(gatehouse, echo, echo2):
    g = gatehouse(config(SPEC, echo, echo2, clusters_by_tag={"store": "store"},
                         clusters_by_operation={"getOrder": "main"}))
    cases = [
        ("GET", "/pets", "main"),
        ("GET", "/pets/search", "main"),  # the literal path wins over /pets/{petId}
        ("GET", "/pets/42", "main"),
        ("DELETE", "/pets/42", "main"),
        ("GET", "/users/login", "main"),
        ("GET", "/users/ann", "main"),
        ("GET", "/store/inventory", "store"),  # by tag
        ("GET", "/store/orders/7", "main"),  # by operationId, over its tag
        ("DELETE", "/store/orders/7", "store"),
    ]
    for method, path, upstream in cases:
        r = request(g, method, path)
        assert r.status_code == 200, (method, path, r.text)
        assert r.json()["upstream"] == {"main": echo.name, "store": echo2.name}[upstream], (
            method, path)
        assert r.json()["path"] == path
    # Ordinary routes: named after operationId in the metrics and the access log.
    m = g.metrics()
    rr = "gatehouse_route_responses_total"
    assert m.value(rr, route="searchPets", **{"class": "2xx"}) == 1
    assert m.value(rr, route="getPet", **{"class": "2xx"}) == 1
    assert m.value(rr, route="getInventory", **{"class": "2xx"}) == 1
    g.wait_log(lambda e: e.get("route") == "cancelOrder" and e["status"] == 200)


def test_undefined_paths_are_404_and_undefined_methods_405(gatehouse, echo, echo2):
    g = gatehouse(config(SPEC, echo, echo2))
    before = echo.request_count()
    assert request(g, "GET", "/nothing/here").status_code == 404
    assert request(g, "GET", "/pets/42/unknown").status_code == 404
    r = request(g, "POST", "/pets/42")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, PUT, PATCH, DELETE, HEAD"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 405
    r = request(g, "PUT", "/pets/search")  # /pets/search is GET only, though /pets/{id} has PUT
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert echo.request_count() == before, "an undefined operation reached the upstream"
    assert request(g, "HEAD", "/pets/42").status_code == 200  # HEAD follows GET


def test_policies_by_tag_and_by_operation(gatehouse, echo, echo2):
    g = gatehouse(config(
        SPEC, echo, echo2,
        policies=[{"name": "headers", "config": {"request": {"set": {"x-from": "openapi"}}}}],
        policies_by_tag={"store": [{"name": "key_auth", "config": {}}]},
        policies_by_operation={"searchPets": [{"name": "rate_limit", "config": {
            "limits": [{"rate": "2/h"}]}}]},
        validate=True))
    # key_auth only on the store tag.
    assert request(g, "GET", "/store/inventory").status_code == 401
    r = request(g, "GET", "/store/inventory", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200, r.text
    assert request(g, "GET", "/pets/42").status_code == 200
    headers = dict((k, v) for k, v in r.json()["headers"])
    assert headers.get("x-from") == "openapi"
    # rate_limit only on searchPets: its third call in the hour is refused, others are not.
    statuses = [request(g, "GET", "/pets/search?q=rex").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert all(request(g, "GET", "/pets").status_code == 200 for _ in range(3))
    # openapi_validate on every operation: a bad parameter never reaches the upstream.
    before = echo.request_count()
    r = request(g, "GET", "/pets?limit=0")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert echo.request_count() == before


def test_reload_follows_the_document(gatehouse, echo, echo2, tmp_path):
    spec = tmp_path / "api.yaml"
    spec.write_text(SPEC.read_text())
    g = gatehouse(config(spec, echo, echo2))
    assert request(g, "GET", "/pets/search").status_code == 200
    assert request(g, "GET", "/kennels").status_code == 404
    # A new operation and one removed: a reload makes and drops their routes.
    text = SPEC.read_text().replace("  /pets/search:\n", "  /kennels:\n").replace(
        "operationId: searchPets", "operationId: listKennels")
    assert "/kennels" in text and "/pets/search" not in text
    spec.write_text(text)
    assert g.reload() == "success"
    wait_until(lambda: request(g, "GET", "/kennels").status_code == 200, IO_TIMEOUT,
               message="the new operation routed")
    assert request(g, "GET", "/pets/search").status_code == 200  # now /pets/{petId}
    assert request(g, "POST", "/kennels").status_code == 405
    # A broken document is refused, and the running routes keep serving.
    spec.write_text(text.replace("  /owners:\n",
                                 "  /dup:\n    get:\n      operationId: listKennels\n  /owners:\n"))
    assert g.reload() == "failure"
    assert request(g, "GET", "/kennels").status_code == 200
    wait_until(lambda: "duplicate operationId 'listKennels'" in g.stderr(), IO_TIMEOUT,
               message="the reload error logged")


def test_validate_names_the_file_and_line(tmp_path, echo, echo2):
    spec = tmp_path / "api.yaml"
    spec.write_text("openapi: 3.0.3\npaths:\n  /a:\n    get: {operationId: x}\n"
                    "  /b:\n    get:\n      operationId: x\n")
    cfg = tmp_path / "gatehouse.yaml"
    cfg.write_text(json.dumps(config(spec, echo, echo2), indent=2))
    p = subprocess.run([GATEHOUSE_BIN, "validate", str(cfg)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert f"{spec}:7:" in p.stdout + p.stderr
    cfg.write_text(json.dumps(config(SPEC, echo, echo2,
                                     policies_by_operation={"getPets": []}), indent=2))
    p = subprocess.run([GATEHOUSE_BIN, "validate", str(cfg)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert "unknown operationId 'getPets'" in p.stdout + p.stderr
