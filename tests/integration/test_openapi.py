"""Policy `openapi_validate`: requests checked against an OpenAPI document (the project's own
26-operation pet shop, tests/integration/data/petstore_openapi.yaml) before they reach a real
upstream. A violation is a 400 application/problem+json that names the failing field and
keyword, and the upstream sees nothing; valid requests pass untouched; unknown operations are
404/405 or pass as configured; an oversized body is a 413; responses are checked report-only
(counted in /metrics and logged, never changed); a broken document fails `gatehouse validate`."""
import json
import pathlib
import subprocess

import httpx

from support import IO_TIMEOUT, simple_config, wait_until
from support.common import GATEHOUSE_BIN
from support.gatehouse import Gatehouse, free_port

SPEC = pathlib.Path(__file__).parent / "data" / "petstore_openapi.yaml"
OWNER = "0b7e7a52-9a8e-4c1e-8a43-5f2d3c1b9e10"


def start(gatehouse, echo, spec=SPEC, prefix="/", **opts):
    policy = {"name": "openapi_validate", "config": {"spec": str(spec), **opts}}
    cfg = simple_config({"name": "up", "endpoints": [echo.endpoint]},
                        routes=[{"name": "shop", "match": {"path_prefix": prefix},
                                 "cluster": "up", "policies": [policy]}])
    return gatehouse(cfg)


def problem(r, status=400):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


def reject(g, echo, method, path, **kw):
    """A request that must be refused before the upstream: its problem body."""
    before = echo.request_count()
    r = httpx.request(method, g.url + path, timeout=IO_TIMEOUT, **kw)
    body = problem(r)
    assert echo.request_count() == before, "the upstream saw an invalid request"
    return body


def error_of(body, **want):
    for e in body["errors"]:
        if all(e.get(k) == v for k, v in want.items()):
            return e
    raise AssertionError(f"no error with {want} in {body['errors']}")


def test_valid_requests_reach_the_upstream(gatehouse, echo):
    g = start(gatehouse, echo)
    ok = [
        ("GET", "/pets?limit=10&tags=a&tags=b&status=sold", {}),
        ("GET", "/pets/search?q=rex", {}),
        ("GET", "/pets/42", {}),
        ("POST", "/pets", {"json": {"name": "Rex", "species": "dog", "tags": ["good"],
                                    "weight_kg": None, "birth_date": "2020-02-29"}}),
        ("PATCH", "/pets/42", {"content": b'{"status":"pending"}',
                               "headers": {"content-type": "application/merge-patch+json"}}),
        ("DELETE", "/pets/42", {"headers": {"x-request-reason": "sold"}}),
        ("POST", "/pets/42/photos", {"content": b"\x89PNG\r\n\x1a\nbinary",
                                     "headers": {"content-type": "image/png"}}),
        ("POST", "/owners", {"json": {"name": "Ann", "email": "ann@example.com",
                                      "phone": "+4412345678"}}),
        ("GET", f"/owners/{OWNER}/pets?include_archived=true", {}),
        ("POST", "/store/orders", {"json": {"lines": [{"sku": "SKU-1", "quantity": 2}],
                                            "payment": {"method": "card", "token": "tok_12345"},
                                            "note": None}}),
        ("POST", "/users", {"json": {"username": "ann_b", "email": "a@b.example",
                                     "password": "correct horse battery"}}),
        ("GET", "/users/login?username=ann&remember=false", {}),
    ]
    for method, path, kw in ok:
        before = echo.request_count()
        r = httpx.request(method, g.url + path, timeout=IO_TIMEOUT, **kw)
        assert r.status_code == 200, (method, path, r.text)
        assert r.headers["content-type"] == "application/json"
        assert echo.request_count() == before + 1
        seen = r.json()
        assert seen["method"] == method and seen["path"] == path
        if "json" in kw:  # the body reached the upstream whole
            assert seen["body_length"] == len(json.dumps(kw["json"]).encode())


def test_body_violations_name_the_field(gatehouse, echo):
    g = start(gatehouse, echo)
    body = reject(g, echo, "POST", "/pets", json={"species": "dog"})
    e = error_of(body, keyword="required")
    assert e["in"] == "body" and e["pointer"] == "/name"
    assert "/name" in body["detail"]

    body = reject(g, echo, "POST", "/store/orders", json={
        "lines": [{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-2", "quantity": "3"}],
        "payment": {"method": "card", "token": "tok_12345"}})
    assert error_of(body, pointer="/lines/1/quantity")["keyword"] == "type"

    body = reject(g, echo, "POST", "/pets", json={"name": "Rex", "species": "dragon",
                                                  "colour": "red"})
    assert error_of(body, pointer="/species")["keyword"] == "enum"
    assert error_of(body, pointer="/colour")["keyword"] == "additionalProperties"

    # oneOf over the payment kinds: neither card nor invoice.
    body = reject(g, echo, "POST", "/store/orders", json={
        "lines": [{"sku": "SKU-1", "quantity": 1}], "payment": {"method": "cash"}})
    assert error_of(body, pointer="/payment")["keyword"] == "oneOf"

    # allOf with a $ref: the inline part's minimum length.
    body = reject(g, echo, "POST", "/users", json={"username": "ann_b", "email": "a@b.example",
                                                   "password": "short"})
    assert error_of(body, pointer="/password")["keyword"] == "minLength"

    body = reject(g, echo, "POST", "/pets", content=b'{"name": "Rex", ',
                  headers={"content-type": "application/json"})
    assert error_of(body, keyword="json")["in"] == "body"

    body = reject(g, echo, "POST", "/pets")
    assert error_of(body, keyword="required")["in"] == "body"


def test_parameters_are_coerced_and_checked(gatehouse, echo):
    g = start(gatehouse, echo)
    e = error_of(reject(g, echo, "GET", "/pets?limit=500"), name="limit")
    assert e["in"] == "query" and e["keyword"] == "maximum"
    assert error_of(reject(g, echo, "GET", "/pets?limit=ten"), name="limit")["keyword"] == "type"
    assert error_of(reject(g, echo, "GET", "/pets?status=lost"), name="status")["keyword"] == "enum"
    body = reject(g, echo, "GET", "/pets?" + "&".join(f"tags=t{i}" for i in range(6)))
    assert error_of(body, name="tags")["keyword"] == "maxItems"
    e = error_of(reject(g, echo, "GET", "/pets/0"), name="petId")
    assert e["in"] == "path" and e["keyword"] == "minimum"
    assert error_of(reject(g, echo, "GET", "/pets/abc"), name="petId")["keyword"] == "type"
    assert error_of(reject(g, echo, "GET", "/pets/search"), name="q")["keyword"] == "required"
    assert error_of(reject(g, echo, "GET", "/owners/not-a-uuid"), name="ownerId")
    body = reject(g, echo, "GET", f"/owners/{OWNER}/pets?include_archived=maybe")
    assert error_of(body, name="include_archived")["keyword"] == "type"
    e = error_of(reject(g, echo, "DELETE", "/pets/3"), name="x-request-reason")
    assert e["in"] == "header" and e["keyword"] == "required"
    body = reject(g, echo, "DELETE", "/pets/3", headers={"x-request-reason": "bored"})
    assert error_of(body, name="x-request-reason")["keyword"] == "enum"
    assert error_of(reject(g, echo, "GET", "/users/Bad%20Name"), name="username")


def test_content_type_must_be_documented(gatehouse, echo):
    g = start(gatehouse, echo)
    body = reject(g, echo, "POST", "/pets", content=b"name=Rex",
                  headers={"content-type": "application/x-www-form-urlencoded"})
    e = error_of(body, keyword="content")
    assert e["name"] == "content-type" and "application/json" in e["message"]
    reject(g, echo, "POST", "/pets/1/photos", content=b"GIF89a",
           headers={"content-type": "image/gif"})
    # Parameters on the media type do not matter.
    r = httpx.post(g.url + "/pets", content=b'{"name":"Rex","species":"cat"}',
                   headers={"content-type": "application/json; charset=utf-8"},
                   timeout=IO_TIMEOUT)
    assert r.status_code == 200, r.text


def test_unknown_operations_reject_or_pass(gatehouse, echo):
    g = start(gatehouse, echo)
    before = echo.request_count()
    problem(httpx.get(g.url + "/nope", timeout=IO_TIMEOUT), 404)
    problem(httpx.post(g.url + "/pets/1", json={}, timeout=IO_TIMEOUT), 405)
    assert echo.request_count() == before
    m = g.metrics()
    assert m.value("gatehouse_openapi_validations_total", route="default/shop", phase="request",
                   result="unknown_operation") == 2

    # HEAD is checked as the GET it stands for.
    assert httpx.head(g.url + "/pets/5", timeout=IO_TIMEOUT).status_code == 200
    assert httpx.head(g.url + "/pets/0", timeout=IO_TIMEOUT).status_code == 400

    g2 = start(gatehouse, echo, unknown_operation="pass")
    r = httpx.get(g2.url + "/nope", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and echo.request_count() == before + 2


def test_base_path_is_removed_before_matching(gatehouse, echo):
    g = start(gatehouse, echo, prefix="/v1/", base_path="/v1")
    r = httpx.get(g.url + "/v1/pets/7", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.json()["path"] == "/v1/pets/7"
    reject(g, echo, "GET", "/v1/pets/0")


def test_oversized_body_is_413_and_never_forwarded(gatehouse, echo):
    g = start(gatehouse, echo, max_body_size="1KiB")
    before = echo.request_count()
    big = {"name": "Rex", "species": "dog", "tags": ["x" * 100] * 20}
    r = httpx.post(g.url + "/pets", json=big, timeout=IO_TIMEOUT)
    assert r.status_code == 413
    assert echo.request_count() == before


def test_responses_are_checked_report_only(gatehouse, echo):
    g = start(gatehouse, echo, responses="report")
    r = httpx.get(g.url + "/diagnostics/echo", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.json()["method"] == "GET"
    # The service answers a shape its description does not promise: passed on untouched.
    r = httpx.get(g.url + "/diagnostics/drift", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.json()["path"] == "/diagnostics/drift"
    r = httpx.get(g.url + "/diagnostics/drift", timeout=IO_TIMEOUT)
    assert r.status_code == 200

    def counted():
        m = g.metrics()
        labels = {"route": "default/shop", "phase": "response"}
        return (m.get_value("gatehouse_openapi_validations_total", result="valid", **labels),
                m.get_value("gatehouse_openapi_validations_total", result="invalid", **labels))
    wait_until(lambda: counted() == (1, 2), message="response checks counted")
    wait_until(lambda: "driftingShape" in g.stderr() and "required" in g.stderr(),
               message="a log line for the drifting response")


def test_openapi_31_document(gatehouse, echo, tmp_path):
    spec = tmp_path / "v31.json"
    spec.write_text(json.dumps({
        "openapi": "3.1.0", "info": {"title": "t", "version": "1"},
        "paths": {"/notes": {"post": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Note"}}}},
            "responses": {"201": {"description": "ok"}}}}},
        "components": {"schemas": {
            "Base": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "Note": {"$ref": "#/components/schemas/Base", "required": ["text"],
                     "properties": {"text": {"type": ["string", "null"]}},
                     "unevaluatedProperties": False}}}}))
    g = start(gatehouse, echo, spec=spec)
    r = httpx.post(g.url + "/notes", json={"id": 1, "text": None}, timeout=IO_TIMEOUT)
    assert r.status_code == 200, r.text
    body = reject(g, echo, "POST", "/notes", json={"id": 1, "text": "x", "extra": True})
    assert error_of(body, pointer="/extra")["keyword"] == "unevaluatedProperties"


def test_bad_document_fails_validate(tmp_path, echo):
    spec = tmp_path / "broken.yaml"
    spec.write_text(SPEC.read_text().replace("#/components/schemas/OrderLine",
                                             "#/components/schemas/OrderLines"))
    cfg = simple_config({"name": "up", "endpoints": [echo.endpoint]},
                        routes=[{"name": "shop", "match": {"path_prefix": "/"}, "cluster": "up",
                                 "policies": [{"name": "openapi_validate",
                                               "config": {"spec": str(spec)}}]}])
    g = Gatehouse(tmp_path, cfg, name="bad")
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "broken.yaml" in out.stderr and "OrderLines" in out.stderr, out.stderr
    assert "paths./store/orders.post.requestBody" in out.stderr, out.stderr
