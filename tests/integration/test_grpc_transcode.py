"""REST/JSON to gRPC transcoding (policy grpc_transcode): a descriptor set compiled here with
protoc from tests/integration/protos, a real grpcio server (h2c) behind Gatehouse, and httpx
JSON clients in front. Covers path variables, query parameters, body "*" and body "field",
additional bindings and verbs, gRPC errors mapped to HTTP status with a JSON error body, server
streaming as a JSON array and as NDJSON (delivered as the messages arrive), bad JSON, native
gRPC clients on the same route and config errors that name the option."""
import json
import shutil
import subprocess
import threading
from concurrent import futures

import grpc
import httpx
import pytest

from support import GATEHOUSE_BIN, IO_TIMEOUT, REPO, Gatehouse, free_port, simple_config

PROTOS = REPO / "tests" / "integration" / "protos"
SERVICE = "bookstore.v1.Bookstore"


@pytest.fixture(scope="module")
def descriptor_set(tmp_path_factory):
    protoc = shutil.which("protoc")
    if not protoc:
        pytest.skip("protoc not installed (scripts/bootstrap installs protobuf-compiler)")
    out = tmp_path_factory.mktemp("protos") / "bookstore.pb"
    subprocess.run([protoc, f"-I{PROTOS}", "-I/usr/include", "--include_imports",
                    f"--descriptor_set_out={out}", "bookstore.proto"], check=True,
                   capture_output=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def messages(descriptor_set):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    factory = message_factory.MessageFactory(pool)
    return {name: factory.GetPrototype(pool.FindMessageTypeByName(f"bookstore.v1.{name}"))
            for name in ("Book", "GetBookRequest", "CreateBookRequest", "ListBooksRequest",
                         "ListBooksResponse", "Empty")}


class Bookstore:
    """The gRPC service; `gate` holds the gated stream (shelf 99) until the test has seen its
    first message."""

    def __init__(self, m):
        self.m = m
        self.gate = threading.Event()
        self.requests = []
        self.updates = []

    def GetBook(self, req, ctx):
        self.requests.append(req)
        if req.name.endswith("missing"):
            ctx.abort(grpc.StatusCode.NOT_FOUND, f"book {req.name} not found")
        return self.m["Book"](name=req.name, title=f"T:{req.name}", pages=req.version or 100,
                              genre=req.genre, tags=list(req.tags) if req.with_tags else [])

    def CreateBook(self, req, ctx):
        return self.m["Book"](name=f"shelves/{req.shelf}/books/new", title=req.book.title,
                              pages=req.book.pages, tags=[req.request_id])

    def UpdateBook(self, req, ctx):
        self.updates.append(req)
        return self.m["Book"](name=req.name, title="updated:" + req.title, pages=req.pages)

    def PublishBook(self, req, ctx):
        return self.m["Book"](name=req.name, title="published")

    def ListBooks(self, req, ctx):
        for i in range(req.count):
            if req.fail_after and i == req.fail_after:
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "shelf went away")
            yield self.m["Book"](name=f"shelves/{req.shelf}/books/{i}", pages=i)
            if req.shelf == 99 and i == 0:
                # Held until the client has the first message: proves it was not buffered.
                if not self.gate.wait(IO_TIMEOUT):
                    yield self.m["Book"](name="late")
                    return
        if req.fail_after and req.count == 0:
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "shelf went away")

    def ShelfBooks(self, req, ctx):
        return self.m["ListBooksResponse"](
            books=[self.m["Book"](name=f"b{i}") for i in range(req.count)])

    def Fail(self, req, ctx):
        ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "denied: caf\u00e9 100%")

    def Raw(self, req, ctx):
        return self.m["Empty"]()


@pytest.fixture
def grpc_server(messages):
    impl = Bookstore(messages)
    m = messages
    unary = {"GetBook": ("GetBookRequest", "Book"), "CreateBook": ("CreateBookRequest", "Book"),
             "UpdateBook": ("Book", "Book"), "PublishBook": ("GetBookRequest", "Book"),
             "ShelfBooks": ("ListBooksRequest", "ListBooksResponse"),
             "Fail": ("GetBookRequest", "Book"), "Raw": ("Empty", "Empty")}
    handlers = {name: grpc.unary_unary_rpc_method_handler(
        getattr(impl, name), request_deserializer=m[i].FromString,
        response_serializer=m[o].SerializeToString) for name, (i, o) in unary.items()}
    handlers["ListBooks"] = grpc.unary_stream_rpc_method_handler(
        impl.ListBooks, request_deserializer=m["ListBooksRequest"].FromString,
        response_serializer=m["Book"].SerializeToString)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    impl.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield impl
    impl.gate.set()
    server.stop(0).wait(IO_TIMEOUT)


def transcode_config(port, descriptor_set, **opts):
    policy = {"descriptor_set": str(descriptor_set), "services": [SERVICE],
              "unannotated_methods": "post", **opts}
    return simple_config({"name": "books", "protocol": "h2c", "endpoints": [f"127.0.0.1:{port}"]},
                         routes=[{"name": "api", "match": {"path_prefix": "/"}, "cluster": "books",
                                  "policies": [{"name": "grpc_transcode", "config": policy}]}])


@pytest.fixture
def gh(gatehouse, grpc_server, descriptor_set):
    return gatehouse(transcode_config(grpc_server.port, descriptor_set))


def client(g, **kw):
    return httpx.Client(base_url=g.url, trust_env=False, timeout=IO_TIMEOUT, **kw)


def test_get_maps_path_variables_and_query_parameters(gh, grpc_server):
    with client(gh) as c:
        r = c.get("/v1/shelves/1/books/2",
                  params=[("withTags", "true"), ("tags", "a b"), ("tags", "c"),
                          ("genre", "HISTORY"), ("version", "7")])
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert "grpc-status" not in r.headers
        assert r.json() == {"name": "shelves/1/books/2", "title": "T:shelves/1/books/2",
                            "pages": "7", "genre": "HISTORY", "tags": ["a b", "c"]}
        assert int(r.headers["content-length"]) == len(r.content)
        # additional_bindings, a percent-encoded single-segment variable, proto field names
        r = c.get("/v1/books/x%20y", params={"with_tags": "true", "tags": "t"})
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "x y" and r.json()["tags"] == ["t"]
        # enum by number, int32 out of range and a non-enum value are the client's fault
        assert c.get("/v1/books/b", params={"genre": "2"}).json()["genre"] == "HISTORY"
        r = c.get("/v1/books/b", params={"version": "99999999999"})
        assert r.status_code == 400 and "version" in r.json()["message"]
        r = c.get("/v1/books/b", params={"nope": "1"})
        assert r.status_code == 400
        assert r.json() == {"code": 3, "message": "query parameter 'nope': no field 'nope' in "
                                                  "bookstore.v1.GetBookRequest"}


def test_post_with_body_field_and_body_star(gh, grpc_server):
    with client(gh) as c:
        r = c.post("/v1/shelves/5/books", params={"requestId": "r-1"},
                   json={"title": "Dune", "pages": 412})
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "shelves/5/books/new", "title": "Dune", "pages": "412",
                            "tags": ["r-1"]}
        # body "*": the whole JSON is the request; the path variable wins over the body
        r = c.patch("/v1/shelves/1/books/2", json={"name": "ignored", "title": "X", "pages": 3})
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "shelves/1/books/2", "title": "updated:X", "pages": "3"}
        # a custom verb
        r = c.post("/v1/shelves/1/books/2:publish", json={})
        assert r.status_code == 200 and r.json()["title"] == "published"
        # an empty body is an empty message
        r = c.post("/v1/shelves/1/books/3:publish")
        assert r.status_code == 200 and r.json()["name"] == "shelves/1/books/3"
        # a method without an annotation (unannotated_methods: post)
        r = c.post(f"/{SERVICE}/Raw", json={})
        assert r.status_code == 200 and r.json() == {}
        # response_body: only the named (repeated) field
        r = c.get("/v1/shelves/4/books", params={"count": "2"})
        assert r.status_code == 200, r.text
        assert r.json() == [{"name": "b0"}, {"name": "b1"}]


def test_grpc_errors_map_to_http_status_with_json_body(gh, grpc_server):
    with client(gh) as c:
        r = c.get("/v1/books/missing")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"code": 5, "message": "book missing not found"}
        r = c.get("/v1/fail/x")
        assert r.status_code == 403
        assert r.json() == {"code": 7, "message": "denied: caf\u00e9 100%"}
        assert "grpc-status" not in r.headers and "grpc-message" not in r.headers


def test_bad_json_is_a_400_and_the_upstream_never_sees_it(gh, grpc_server):
    with client(gh) as c:
        for body in (b"{not json", b'{"title": 5, "pages": "many"}', b'{"unknown": 1}', b"[1,2]"):
            r = c.patch("/v1/shelves/1/books/2", content=body,
                        headers={"content-type": "application/json"})
            assert r.status_code == 400, (body, r.text)
            assert r.headers["content-type"] == "application/json"
            err = r.json()
            assert err["code"] == 3 and err["message"].startswith("invalid JSON body"), err
        # the gateway still serves well-formed requests on the same connection
        assert c.get("/v1/books/ok").status_code == 200
    assert grpc_server.updates == []


def test_server_streaming_as_json_array(gh, grpc_server):
    with client(gh) as c:
        r = c.get("/v1/shelves/3/books:stream", params={"count": "3"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json() == [{"name": f"shelves/3/books/{i}", **({"pages": str(i)} if i else {})}
                            for i in range(3)]
        assert c.get("/v1/shelves/3/books:stream", params={"count": "0"}).json() == []
        # an error after two messages: a 200 whose array ends with the error
        r = c.get("/v1/shelves/3/books:stream", params={"count": "5", "failAfter": "2"})
        assert r.status_code == 200
        body = r.json()
        assert len(body) == 3
        assert body[2] == {"error": {"code": 14, "message": "shelf went away"}}
        # an error before any message: the mapped status
        r = c.get("/v1/shelves/3/books:stream", params={"count": "0", "failAfter": "1"})
        assert r.status_code == 503
        assert r.json() == {"code": 14, "message": "shelf went away"}


def test_server_streaming_as_ndjson_delivered_as_messages_arrive(gatehouse, grpc_server,
                                                                 descriptor_set):
    g = gatehouse(transcode_config(grpc_server.port, descriptor_set, streaming="ndjson"))
    with client(g) as c:
        r = c.get("/v1/shelves/2/books:stream", params={"count": "3", "failAfter": "2"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(x) for x in r.text.splitlines()]
        assert lines[:2] == [{"name": "shelves/2/books/0"}, {"name": "shelves/2/books/1",
                                                             "pages": "1"}]
        assert lines[2] == {"error": {"code": 14, "message": "shelf went away"}}
        # The first message reaches the client while the server still holds the second.
        with c.stream("GET", "/v1/shelves/99/books:stream", params={"count": "2"}) as s:
            assert s.status_code == 200
            it = s.iter_lines()
            first = json.loads(next(it))
            assert first == {"name": "shelves/99/books/0"}
            grpc_server.gate.set()
            rest = [json.loads(x) for x in it if x]
        assert rest == [{"name": "shelves/99/books/1", "pages": "1"}]


def test_http2_client_and_native_grpc_on_the_same_route(gh, grpc_server, messages):
    with client(gh, http1=False, http2=True) as c:  # h2c with prior knowledge
        r = c.get("/v1/books/h2")
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200 and r.json()["name"] == "h2"
        r = c.get("/v1/books/missing")
        assert r.status_code == 404 and r.json()["code"] == 5
    # a gRPC client passes through untouched
    with grpc.insecure_channel(f"127.0.0.1:{gh.port}") as ch:
        call = ch.unary_unary(f"/{SERVICE}/GetBook",
                              request_serializer=messages["GetBookRequest"].SerializeToString,
                              response_deserializer=messages["Book"].FromString)
        assert call(messages["GetBookRequest"](name="native"), timeout=IO_TIMEOUT).title == \
            "T:native"
    m = gh.metrics()
    assert m.get_value("gatehouse_grpc_transcode_requests_total", result="transcoded") == 2
    assert m.get_value("gatehouse_grpc_transcode_requests_total", result="passed") >= 1


def test_unmatched_requests_can_be_rejected(gatehouse, grpc_server, descriptor_set):
    g = gatehouse(transcode_config(grpc_server.port, descriptor_set, unmatched="reject"))
    with client(g) as c:
        r = c.get("/v2/nothing")
        assert r.status_code == 404
        assert r.json() == {"code": 5, "message": "no gRPC method is bound to GET /v2/nothing"}
        assert c.delete("/v1/books/x").status_code == 404  # the path exists, the method not


def test_upstream_down_is_a_json_gateway_error(gatehouse, descriptor_set):
    g = gatehouse(transcode_config(free_port(), descriptor_set))
    with client(g) as c:
        r = c.get("/v1/books/x")
        assert r.status_code in (502, 503), r.text
        assert r.headers["content-type"].startswith("application/json")
        assert "grpc-status" not in r.headers


def validate(tmp_path, descriptor_set, **opts):
    g = Gatehouse(tmp_path, transcode_config(free_port(), descriptor_set, **opts), name="bad")
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    return subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                          text=True, timeout=60)


def test_config_errors_name_the_option(tmp_path, descriptor_set):
    out = validate(tmp_path, tmp_path / "missing.pb")
    assert out.returncode != 0
    assert "descriptor_set: cannot read" in out.stderr and "missing.pb" in out.stderr, out.stderr
    out = validate(tmp_path, descriptor_set, services=["bookstore.v1.Nope"])
    assert out.returncode != 0
    assert "services: no service 'bookstore.v1.Nope'" in out.stderr, out.stderr
    out = validate(tmp_path, descriptor_set, unannotated_methods="error")
    assert out.returncode != 0
    assert "'bookstore.v1.Bookstore.Raw' has no google.api.http annotation" in out.stderr
    out = validate(tmp_path, descriptor_set, streaming="xml")
    assert out.returncode != 0 and "streaming: expected one of" in out.stderr, out.stderr
    assert validate(tmp_path, descriptor_set).returncode == 0


def test_large_messages_and_long_streams(gatehouse, grpc_server, descriptor_set):
    g = gatehouse(transcode_config(grpc_server.port, descriptor_set,
                                   max_response_message_bytes=100_000))
    big = "x" * 90_000  # spans several HTTP/2 DATA frames both ways
    with client(g) as c:
        r = c.patch("/v1/shelves/1/books/2", json={"title": big})
        assert r.status_code == 200, r.text[:200]
        assert r.json()["title"] == "updated:" + big
        assert int(r.headers["content-length"]) == len(r.content)
        r = c.get("/v1/shelves/8/books:stream", params={"count": "500"})
        assert r.status_code == 200
        books = r.json()
        assert len(books) == 500 and books[499] == {"name": "shelves/8/books/499", "pages": "499"}
        # a response message over max_response_message_bytes is not converted: 502, code 13
        r = c.patch("/v1/shelves/1/books/2", json={"title": "y" * 120_000})
        assert r.status_code == 502
        assert r.json() == {"code": 13, "message": "response message larger than "
                                                   "max_response_message_bytes"}
    assert g.metrics().get_value("gatehouse_grpc_transcode_requests_total",
                                 result="bad_response") == 1
