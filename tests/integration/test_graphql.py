"""Policies `graphql` and `rest_to_graphql` (issue 20, item 3) against a real GraphQL server
(graphql-core, support/graphql_server.py): depth, alias, field and cost limits with fragments
expanded, persisted queries (listed hashes, Apollo APQ hash-only requests), introspection off
per consumer, routing by operation name and type, rate limits by operation, clear errors for
malformed requests, and REST calls turned into named GraphQL queries."""
import hashlib
import json
import subprocess

import httpx
import pytest

from support import Gatehouse, cluster, simple_config
from support.auth import sha256_hex
from support.common import GATEHOUSE_BIN, free_port
from support.graphql_server import GraphqlServer

ADMIN_KEY = "ops-key-1"
PARTNER_KEY = "partner-key-1"
CONSUMERS = [
    {"name": "ops", "credentials": {"api_keys": [{"sha256": sha256_hex(ADMIN_KEY)}]}},
    {"name": "partner", "credentials": {"api_keys": [{"sha256": sha256_hex(PARTNER_KEY)}]}},
]


@pytest.fixture
def gql_factory():
    servers = []

    def make(name="gql"):
        s = GraphqlServer(name).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def gql(gql_factory):
    return gql_factory("main")


def ep(server):
    return f"127.0.0.1:{server.port}"


def graphql_config(*servers, policy=None, before=(), after=(), consumers=None, extra_routes=()):
    clusters = [cluster(s.name, ep(s)) for s in servers]
    route = {"name": "graphql", "match": {"path_prefix": "/graphql"}, "cluster": servers[0].name,
             "policies": [*before, {"name": "graphql", "config": policy or {}}, *after]}
    cfg = simple_config(*clusters, routes=[route, *extra_routes])
    if consumers:
        cfg["consumers"] = consumers
    return cfg


def post(gh, query=None, headers=None, **fields):
    body = dict(fields)
    if query is not None:
        body["query"] = query
    return httpx.post(gh.url + "/graphql", json=body, headers=headers or {}, timeout=15)


def error_of(r):
    doc = r.json()
    assert "errors" in doc and doc["errors"], doc
    return doc["errors"][0]


def test_limits_on_depth_aliases_fields_and_cost(gatehouse, gql):
    gh = gatehouse(graphql_config(gql, policy={
        "max_depth": 3, "max_aliases": 2, "max_fields": 12, "max_cost": 40,
        "cost": {"fields": {"search": 10}, "list_arguments": ["first", "limit"]}}))
    r = post(gh, "{ users(first: 2) { id friends(first: 1) { name } } }")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["users"][0]["friends"] == [{"name": "Grace"}]

    # Depth 4 with fragments expanded: the fragment adds the fourth level.
    r = post(gh, "{ users { friends { ...F } } } fragment F on User { friends { id } }")
    assert r.status_code == 400
    e = error_of(r)
    assert e["extensions"]["code"] == "MAX_DEPTH_EXCEEDED"
    assert e["message"] == "query depth 4 exceeds max_depth 3"
    assert e["extensions"]["limit"] == "max_depth" and e["extensions"]["actual"] == 4

    r = post(gh, "{ a: hello b: hello c: hello }")
    assert r.status_code == 400 and error_of(r)["extensions"]["code"] == "MAX_ALIASES_EXCEEDED"
    assert "max_aliases 2" in error_of(r)["message"]

    r = post(gh, "query A { users { ...U } } fragment U on User { id name friends { id name } }"
                 " query Other { hello }", operationName=None)
    # Two operations and no operationName: a validation error, not a guess.
    assert r.status_code == 400
    assert error_of(r)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "operationName is required" in error_of(r)["message"]

    fields = " ".join(["hello"] * 13)
    r = post(gh, "{ " + fields + " }")
    assert error_of(r)["extensions"]["code"] == "MAX_FIELDS_EXCEEDED"
    assert error_of(r)["message"] == "field count 13 exceeds max_fields 12"

    # search costs 10 + limit 5 x (id 1) = 15; users(first: $n) with n = 30 costs 1 + 30.
    assert post(gh, '{ search(term: "a", limit: 5) { id } }').status_code == 200
    r = post(gh, "query Q($n: Int) { users(first: $n) { id } search(term: \"a\") { id } }",
             variables={"n": 30})
    assert r.status_code == 400
    assert error_of(r)["extensions"] == {"code": "MAX_COST_EXCEEDED", "limit": "max_cost",
                                         "maximum": 40, "actual": 42}
    # Nothing over a limit reached the server.
    assert len(gql.requests) == 2


def test_malformed_requests_get_clear_errors(gatehouse, gql):
    gh = gatehouse(graphql_config(gql, policy={"max_nesting": 20}))
    r = post(gh, "{\n  user(id: ) { name }\n}")
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    e = error_of(r)
    assert e["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert e["message"] == "Syntax Error: expected a value, found ')' (line 2, column 12)"
    assert error_of(post(gh, '{ a(s: "\\q") }'))["message"].startswith(
        "Syntax Error: invalid escape sequence")
    assert error_of(post(gh, "type Query { a: Int }"))["extensions"]["code"] == \
        "GRAPHQL_VALIDATION_FAILED"
    r = post(gh, "{ a " * 50 + "}" * 50)
    assert error_of(r)["extensions"]["code"] == "MAX_NESTING_EXCEEDED"
    assert error_of(post(gh, "{ ...Nope }"))["message"] == "unknown fragment 'Nope'"
    r = post(gh, "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    assert error_of(r)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "cycle" in error_of(r)["message"]
    r = httpx.post(gh.url + "/graphql", content=b"{not json", timeout=15,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and error_of(r)["message"] == "the request body is not valid JSON"
    r = httpx.post(gh.url + "/graphql", content=b"query", timeout=15,
                   headers={"content-type": "text/plain"})
    assert r.status_code == 415 and error_of(r)["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert error_of(post(gh, None))["message"] == "the request has no query"
    assert error_of(post(gh, 5))["message"] == "query must be a string"
    r = post(gh, "{ hello }", operationName="Nope")
    assert error_of(r)["message"] == "no operation named 'Nope' in the document"
    # GET carries queries only; a mutation over GET is refused.
    r = httpx.get(gh.url + "/graphql", params={"query": "{ hello }"}, timeout=15)
    assert r.status_code == 200 and r.json()["data"] == {"hello": "world"}
    r = httpx.get(gh.url + "/graphql", timeout=15,
                  params={"query": 'mutation { createUser(name: "x") { id } }'})
    assert r.status_code == 405 and error_of(r)["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert len(gql.requests) == 1


def test_error_status_200_per_graphql_over_http(gatehouse, gql):
    gh = gatehouse(graphql_config(gql, policy={"max_depth": 1, "error_status": 200}))
    r = post(gh, "{ users { id } }")
    assert r.status_code == 200 and error_of(r)["extensions"]["code"] == "MAX_DEPTH_EXCEEDED"
    assert "data" not in r.json()


def test_persisted_queries_allow_only_listed_hashes(gatehouse, gql, tmp_path):
    listed = "query Hello { hello }"
    manifest = tmp_path / "queries.json"
    manifest.write_text(json.dumps({hashlib.sha256(listed.encode()).hexdigest(): listed}))
    gh = gatehouse(graphql_config(gql, policy={"persisted_queries": {"file": str(manifest)}}))
    assert post(gh, listed).json()["data"] == {"hello": "world"}
    r = post(gh, "{ hello }")
    assert r.status_code == 400
    assert error_of(r)["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"

    # Apollo APQ: the hash alone; the gateway sends the full query upstream.
    h = hashlib.sha256(listed.encode()).hexdigest()
    apq = {"persistedQuery": {"version": 1, "sha256Hash": h}}
    r = post(gh, None, extensions=apq)
    assert r.status_code == 200 and r.json()["data"] == {"hello": "world"}
    sent = json.loads(gql.requests[-1]["raw"])
    assert sent["query"] == listed and "extensions" not in sent
    # Via GET too.
    r = httpx.get(gh.url + "/graphql", params={"extensions": json.dumps(apq)}, timeout=15)
    assert r.status_code == 200 and r.json()["data"] == {"hello": "world"}
    # An unknown hash: the APQ answer clients understand.
    r = post(gh, None, extensions={"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}})
    assert error_of(r)["message"] == "PersistedQueryNotFound"
    assert error_of(r)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # A hash that is not the query's.
    r = post(gh, listed, extensions={"persistedQuery": {"version": 1, "sha256Hash": "1" * 64}})
    assert error_of(r)["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert len(gql.requests) == 3


def test_introspection_off_except_for_one_consumer(gatehouse, gql):
    key_auth = {"name": "key_auth", "config": {"consumers": "registry", "anonymous": "guest"}}
    gh = gatehouse(graphql_config(
        gql, consumers=CONSUMERS, before=[key_auth],
        policy={"introspection": {"enabled": False, "allow_consumers": ["ops"]}}))
    q = "{ __schema { queryType { name } } }"
    r = post(gh, q, headers={"x-api-key": PARTNER_KEY})
    assert r.status_code == 400
    assert error_of(r)["extensions"]["code"] == "INTROSPECTION_DISABLED"
    assert error_of(r)["message"] == "introspection is disabled for consumer partner"
    r = post(gh, '{ ...T } fragment T on Query { __type(name: "User") { name } }')
    assert error_of(r)["message"] == "introspection is disabled for consumer guest"
    r = post(gh, q, headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200 and r.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    # __typename is not introspection.
    assert post(gh, "{ __typename }", headers={"x-api-key": PARTNER_KEY}).status_code == 200


def test_introspection_denied_for_one_consumer(gatehouse, gql):
    key_auth = {"name": "key_auth", "config": {"consumers": "registry"}}
    gh = gatehouse(graphql_config(gql, consumers=CONSUMERS, before=[key_auth],
                                  policy={"introspection": {"deny_consumers": ["partner"]}}))
    q = "{ __schema { queryType { name } } }"
    assert post(gh, q, headers={"x-api-key": ADMIN_KEY}).status_code == 200
    assert post(gh, q, headers={"x-api-key": PARTNER_KEY}).status_code == 400


def test_routing_by_operation_name_and_type(gatehouse, gql_factory):
    reads, writes, search = gql_factory("reads"), gql_factory("writes"), gql_factory("search")
    gh = gatehouse(graphql_config(reads, writes, search, policy={
        "routing": {"operations": {"FindPeople": "search"}, "types": {"mutation": "writes"}}}))
    r = post(gh, 'query FindPeople { search(term: "a") { name } }')
    assert r.status_code == 200 and r.headers["x-upstream"] == "search"
    r = post(gh, 'mutation Add { createUser(name: "Z") { id } }')
    assert r.status_code == 200 and r.headers["x-upstream"] == "writes"
    assert r.json()["data"]["createUser"]["id"] == "99"
    r = post(gh, "query Other { hello }")
    assert r.headers["x-upstream"] == "reads"
    # The operation is chosen by operationName among several.
    doc = 'query FindPeople { search(term: "e") { id } } mutation Add { createUser(name: "Q") { id } }'
    assert post(gh, doc, operationName="Add").headers["x-upstream"] == "writes"
    assert post(gh, doc, operationName="FindPeople").headers["x-upstream"] == "search"
    r = httpx.get(gh.url + "/graphql", params={"query": "query FindPeople { hello }"}, timeout=15)
    assert r.headers["x-upstream"] == "search"
    assert [len(s.requests) for s in (reads, writes, search)] == [1, 2, 3]


def test_rate_limit_by_operation(gatehouse, gql):
    rl = {"name": "rate_limit", "config": {
        "key": "var:graphql_operation", "missing_key": "allow",
        "limits": [{"rate": "2/h", "burst": 2}]}}
    gh = gatehouse(graphql_config(gql, after=[rl]))
    statuses = [post(gh, "query Hello { hello }").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    # Another operation has its own budget; an anonymous one has no key (allowed).
    assert post(gh, "query Users { users(first: 1) { id } }").status_code == 200
    assert all(post(gh, "{ hello }").status_code == 200 for _ in range(4))
    assert len(gql.requests) == 7


def test_operation_is_in_the_access_log(gatehouse, gql):
    cfg = graphql_config(gql)
    cfg["access_log"] = {"fields": ["route", "status", "vars"]}
    gh = gatehouse(cfg)
    assert post(gh, 'mutation Add { createUser(name: "x") { id } }').status_code == 200
    entry = gh.wait_log(lambda e: e.get("vars", {}).get("graphql_operation") == "Add")
    assert entry["vars"]["graphql_type"] == "mutation"


REST_QUERY = ("query GetUser($id: ID!, $friends: Int) "
              "{ user(id: $id) { id name friends(first: $friends) { name } } }")


def rest_config(gql, **policy):
    route = {"name": "users", "match": {"path_template": "/users/{id}"}, "cluster": gql.name,
             "policies": [{"name": "rest_to_graphql", "config": {
                 "query": REST_QUERY, "path": "/graphql", "result": "/user",
                 "variables": {"id": "{{ request.params.id }}",
                               "friends": {"value": "{{ request.query.friends }}",
                                           "type": "int"}},
                 **policy}}]}
    return simple_config(cluster(gql.name, ep(gql)), routes=[route])


def test_rest_to_graphql_with_path_and_query_variables(gatehouse, gql):
    gh = gatehouse(rest_config(gql))
    r = httpx.get(gh.url + "/users/2?friends=2", timeout=15)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"id": "2", "name": "Grace", "friends": [{"name": "Ada"},
                                                                  {"name": "Edsger"}]}
    sent = gql.requests[-1]
    assert sent["method"] == "POST" and sent["path"] == "/graphql"
    assert sent["params"] == {"query": REST_QUERY, "operationName": "GetUser",
                              "variables": {"id": "2", "friends": 2}}
    # No query parameter: the variable is left out (the server sees null, all friends).
    r = httpx.get(gh.url + "/users/1", timeout=15)
    assert len(r.json()["friends"]) == 7
    assert "friends" not in gql.requests[-1]["params"]["variables"]
    # A GraphQL error with code NOT_FOUND becomes a 404; one without a code a 502.
    r = httpx.get(gh.url + "/users/missing", timeout=15)
    assert r.status_code == 404 and r.json()["errors"][0]["message"] == "no user missing"
    r = httpx.get(gh.url + "/users/boom", timeout=15)
    assert r.status_code == 502 and r.json()["errors"][0]["message"] == "resolver failed"
    # null data: 404.
    assert httpx.get(gh.url + "/users/12345", timeout=15).status_code == 404
    # A query parameter that is not an int never reaches the server.
    n = len(gql.requests)
    r = httpx.get(gh.url + "/users/1?friends=many", timeout=15)
    assert r.status_code == 400
    assert r.json()["errors"][0]["message"] == "variable friends: 'many' is not an integer"
    assert len(gql.requests) == n


def validate(tmp_path, cfg, name):
    g = Gatehouse(tmp_path, cfg, name=name)
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    return subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                          text=True, timeout=30)


def test_config_errors(tmp_path, gql):
    out = validate(tmp_path, rest_config(gql, query="query GetUser($id: ID!) { user(id: $id) { "),
                   "badq")
    assert out.returncode != 0 and "query: line 1, column" in out.stderr, out.stderr
    out = validate(tmp_path, rest_config(gql, query="query GetUser { hello }"), "undeclared")
    assert "variables.id: the operation declares no variable $id" in out.stderr, out.stderr
    out = validate(tmp_path, graphql_config(gql, policy={"routing": {"types": {"query": "nope"}}}),
                   "cluster")
    assert "unknown cluster 'nope'" in out.stderr, out.stderr
    out = validate(tmp_path, graphql_config(gql, policy={"persisted_queries": {"hashes": ["xyz"]}}),
                   "hash")
    assert "'xyz' is not a hex SHA-256 hash" in out.stderr, out.stderr
    out = validate(tmp_path, graphql_config(gql, policy={"max_depht": 3}), "typo")
    assert "unknown option 'max_depht'" in out.stderr, out.stderr
