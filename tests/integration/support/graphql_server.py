"""A real GraphQL server for the graphql tests: graphql-core (Debian python3-graphql-core) behind
a ThreadingHTTPServer speaking GraphQL over HTTP (POST application/json, GET ?query=).

Schema:
  type Query    { hello: String, user(id: ID!): User, users(first: Int): [User!]!,
                  search(term: String!, limit: Int): [User!]! }
  type Mutation { createUser(name: String!): User! }
  type User     { id: ID!, name: String!, friends(first: Int): [User!]! }
user(id: "missing") fails with extensions.code NOT_FOUND; user(id: "boom") with no code.
Every request is recorded (path, method, body or query) in `requests`; the answer carries the
server's name in the x-upstream header and in extensions.upstream.
"""
from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from graphql import (GraphQLArgument, GraphQLError, GraphQLField, GraphQLID, GraphQLInt,
                     GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema,
                     GraphQLString, graphql)
from graphql.error import format_error

# graphql-core logs every resolver error with a traceback; the tests read them from replies.
logging.getLogger("graphql").setLevel(logging.CRITICAL)

PEOPLE = [{"id": str(i), "name": n} for i, n in enumerate(
    ["Ada", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Dennis"], start=1)]


def _take(items, first):
    return items if first is None else items[:max(0, first)]


def _user(_root, _info, id):  # noqa: A002 - the GraphQL argument's name
    if id == "missing":
        raise GraphQLError(f"no user {id}", extensions={"code": "NOT_FOUND"})
    if id == "boom":
        raise GraphQLError("resolver failed")
    for p in PEOPLE:
        if p["id"] == id:
            return p
    return None


def _build_schema():
    user = GraphQLObjectType("User", lambda: {
        "id": GraphQLField(GraphQLNonNull(GraphQLID)),
        "name": GraphQLField(GraphQLNonNull(GraphQLString)),
        "friends": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(user))),
                                args={"first": GraphQLArgument(GraphQLInt)},
                                resolver=lambda root, _i, first=None: _take(
                                    [p for p in PEOPLE if p["id"] != root["id"]], first)),
    })
    query = GraphQLObjectType("Query", {
        "hello": GraphQLField(GraphQLString, resolver=lambda *_: "world"),
        "user": GraphQLField(user, args={"id": GraphQLArgument(GraphQLNonNull(GraphQLID))},
                             resolver=_user),
        "users": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(user))),
                              args={"first": GraphQLArgument(GraphQLInt)},
                              resolver=lambda _r, _i, first=None: _take(PEOPLE, first)),
        "search": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(user))),
                               args={"term": GraphQLArgument(GraphQLNonNull(GraphQLString)),
                                     "limit": GraphQLArgument(GraphQLInt)},
                               resolver=lambda _r, _i, term, limit=None: _take(
                                   [p for p in PEOPLE if term.lower() in p["name"].lower()],
                                   limit)),
    })
    mutation = GraphQLObjectType("Mutation", {
        "createUser": GraphQLField(GraphQLNonNull(user),
                                   args={"name": GraphQLArgument(GraphQLNonNull(GraphQLString))},
                                   resolver=lambda _r, _i, name: {"id": "99", "name": name}),
    })
    return GraphQLSchema(query=query, mutation=mutation)


SCHEMA = _build_schema()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30

    def log_message(self, *a):
        pass

    def _answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-upstream", self.server.name)
        self.end_headers()
        self.wfile.write(body)

    def _run(self, params, raw):
        self.server.record({"method": self.command, "path": self.path, "params": params,
                            "raw": raw})
        query = params.get("query")
        if not isinstance(query, str):
            return self._answer(400, {"errors": [{"message": "no query"}]})
        result = graphql(SCHEMA, query, variable_values=params.get("variables") or None,
                         operation_name=params.get("operationName"))
        doc = {}
        if result.errors:
            doc["errors"] = [format_error(e) for e in result.errors]
        if result.data is not None or not result.errors:
            doc["data"] = result.data
        doc["extensions"] = {"upstream": self.server.name}
        self._answer(200, doc)

    def do_GET(self):  # noqa: N802
        qs = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        params = {k: v[0] for k, v in qs.items()}
        if "variables" in params:
            params["variables"] = json.loads(params["variables"])
        self._run(params, None)

    def do_POST(self):  # noqa: N802
        n = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(n).decode()
        try:
            params = json.loads(raw)
        except ValueError:
            return self._answer(400, {"errors": [{"message": "bad json"}]})
        self._run(params if isinstance(params, dict) else {}, raw)


class GraphqlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name="graphql"):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.port = self.server_address[1]
        self.requests = []
        self._lock = threading.Lock()
        self._thread = None

    def record(self, entry):
        with self._lock:
            self.requests.append(entry)

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=10)
