"""OpenTelemetry tracing (issue 16, item 1). A real OTLP/HTTP receiver started by the test
decodes what the gateway exports with protobuf classes compiled by protoc from
protos/otlp/trace_subset.proto (the official field numbers), and the tests check the span
tree: one server span per request, a client span per upstream attempt (a retry is two), an
aggregation's calls, W3C and B3 propagation to the upstream, sampling (ratio 0, parent-based,
errors), the dropped-span counter while the collector is down, and the trace id in the
access log."""
import importlib
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from support import BackgroundHttpServer, cluster, simple_config, wait_until
from support.auth import sha256_hex

PROTOS = Path(__file__).parent / "protos"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0([01])$")


@pytest.fixture(scope="module")
def otlp_pb(tmp_path_factory):
    out = tmp_path_factory.mktemp("otlp_pb")
    subprocess.run(["protoc", f"-I{PROTOS}", f"--python_out={out}",
                    str(PROTOS / "otlp" / "trace_subset.proto")], check=True)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("otlp.trace_subset_pb2")
    finally:
        sys.path.remove(str(out))


def attrs_of(kvs):
    out = {}
    for kv in kvs:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


class OtlpReceiver(BackgroundHttpServer):
    """POST /v1/traces with an ExportTraceServiceRequest; every span is kept as a dict."""

    def __init__(self, pb):
        self.pb = pb
        self.spans = []
        self.resources = []
        self.content_types = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                srv = self.server
                body = self.rfile.read(int(self.headers["content-length"]))
                req = srv.pb.ExportTraceServiceRequest()
                req.ParseFromString(body)
                with srv.lock:
                    srv.content_types.append(self.headers.get("content-type"))
                    for rs in req.resource_spans:
                        srv.resources.append(attrs_of(rs.resource.attributes))
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                srv.spans.append(srv.decode(s))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

        super().__init__(Handler)

    def decode(self, s):
        return {"trace": s.trace_id.hex(), "id": s.span_id.hex(),
                "parent": s.parent_span_id.hex(), "name": s.name, "kind": s.kind,
                "state": s.trace_state, "attrs": attrs_of(s.attributes),
                "events": [(e.name, attrs_of(e.attributes)) for e in s.events],
                "status": s.status.code, "start": s.start_time_unix_nano,
                "end": s.end_time_unix_nano}

    @property
    def url(self):
        return f"http://{self.endpoint}/v1/traces"

    def snapshot(self):
        with self.lock:
            return list(self.spans)

    def trace(self, trace_id):
        return [s for s in self.snapshot() if s["trace"] == trace_id]

    def wait_trace(self, trace_id, count):
        """The spans of `trace_id` once there are `count` of them."""
        return wait_until(lambda: (lambda t: t if len(t) >= count else None)(self.trace(trace_id)),
                          timeout=20, message=f"{count} spans of trace {trace_id}")


@pytest.fixture
def receiver(otlp_pb):
    r = OtlpReceiver(otlp_pb)
    yield r
    r.stop()


class Upstream(BackgroundHttpServer):
    """Answers 200 (or `statuses` in order first); records each request's headers."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.seen = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                srv = self.server
                with srv.lock:
                    srv.seen.append({k.lower(): v for k, v in self.headers.items()})
                    status = srv.statuses.pop(0) if srv.statuses else 200
                body = b'{"ok": true}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    def headers(self):
        with self.lock:
            return list(self.seen)


@pytest.fixture
def upstream_factory():
    made = []

    def make(statuses=()):
        u = Upstream(statuses)
        made.append(u)
        return u
    yield make
    for u in made:
        u.stop()


def tracing(receiver_url, **opts):
    return {"endpoint": receiver_url, "service_name": "gh-test", **opts}


def parse_tp(value):
    m = TRACEPARENT.match(value or "")
    assert m, f"not a traceparent: {value!r}"
    return m.group(1), m.group(2), m.group(3) == "1"


CLIENT_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_retry_gives_two_client_spans_under_one_server_span(gatehouse, receiver,
                                                            upstream_factory):
    up = upstream_factory(statuses=[503])
    gh = gatehouse(simple_config(cluster("svc", up), routes=[
        {"name": "r", "match": {"path_prefix": "/api"}, "cluster": "svc",
         "retry": {"attempts": 2, "on": [503]}}], tracing=tracing(receiver.url)))
    r = httpx.get(gh.url + "/api/items?x=1", headers={"traceparent": CLIENT_TP,
                                                      "tracestate": "vendor=abc"}, timeout=15)
    assert r.status_code == 200
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    spans = receiver.wait_trace(trace_id, 3)
    assert len(spans) == 3, spans
    server = next(s for s in spans if s["kind"] == 2)
    clients = sorted((s for s in spans if s["kind"] == 3), key=lambda s: s["attrs"]["gatehouse.attempt"])
    # The server span continues the caller's span; both attempts are its children.
    assert server["parent"] == "00f067aa0ba902b7" and server["state"] == "vendor=abc"
    assert [c["parent"] for c in clients] == [server["id"]] * 2
    assert [c["attrs"]["gatehouse.attempt"] for c in clients] == [1, 2]
    assert clients[0]["attrs"]["http.response.status_code"] == 503
    assert clients[0]["attrs"]["error.type"] == "503" and clients[0]["status"] == 2
    assert clients[1]["attrs"]["http.response.status_code"] == 200
    assert clients[1]["attrs"]["http.request.resend_count"] == 1
    assert clients[1]["attrs"]["server.port"] == up.server_address[1]
    assert clients[1]["attrs"]["network.peer.address"] == "127.0.0.1"
    a = server["attrs"]
    assert a["http.request.method"] == "GET" and a["url.path"] == "/api/items"
    assert a["url.scheme"] == "http" and a["http.route"] == "/api*"
    assert a["http.response.status_code"] == 200 and a["server.port"] == gh.port
    assert server["name"] == "GET /api*" and clients[0]["name"] == "GET"
    assert server["start"] <= clients[0]["start"] <= clients[1]["start"] <= server["end"]
    # Each attempt sent its own span id as the parent, with the caller's trace and tracestate.
    sent = [parse_tp(h["traceparent"]) for h in up.headers()]
    assert [(t, p) for t, p, _ in sent] == [(trace_id, c["id"]) for c in clients]
    assert all(sampled for _, _, sampled in sent)
    assert [h.get("tracestate") for h in up.headers()] == ["vendor=abc"] * 2
    assert receiver.resources[0]["service.name"] == "gh-test"
    assert receiver.content_types[0] == "application/x-protobuf"


def test_aggregation_calls_are_client_spans_of_the_request(gatehouse, receiver,
                                                           upstream_factory):
    a, b, c = upstream_factory(), upstream_factory(), upstream_factory()
    calls = [{"name": n, "cluster": n, "path": f"/{n}"} for n in ("one", "two", "three")]
    gh = gatehouse(simple_config(
        cluster("one", a), cluster("two", b), cluster("three", c),
        routes=[{"name": "agg", "match": {"path_prefix": "/agg"},
                 "policies": [{"name": "aggregate", "config": {"calls": calls}}]}],
        tracing=tracing(receiver.url)))
    r = httpx.get(gh.url + "/agg", timeout=15)
    assert r.status_code == 200, r.text
    log = gh.wait_log(lambda e: e.get("path") == "/agg")
    trace_id = log["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    spans = receiver.wait_trace(trace_id, 4)
    server = next(s for s in spans if s["kind"] == 2)
    children = {s["name"]: s for s in spans if s["kind"] == 3}
    assert set(children) == {"aggregate one", "aggregate two", "aggregate three"}
    for name, up in (("one", a), ("two", b), ("three", c)):
        span = children[f"aggregate {name}"]
        assert span["parent"] == server["id"]
        assert span["attrs"]["gatehouse.call.kind"] == "aggregate"
        assert span["attrs"]["gatehouse.upstream.cluster"] == name
        assert span["attrs"]["url.full"].endswith(f"/{name}")
        tid, parent, sampled = parse_tp(up.headers()[0]["traceparent"])
        assert (tid, parent, sampled) == (trace_id, span["id"], True)
    assert server["parent"] == ""  # a new trace: the gateway's span is the root


def test_ratio_zero_exports_nothing_but_still_propagates(gatehouse, receiver, upstream_factory):
    up = upstream_factory()
    gh = gatehouse(simple_config(cluster("svc", up), tracing=tracing(
        receiver.url, sample_ratio=0)), workers=1)
    for i in range(5):
        assert httpx.get(gh.url + f"/n{i}", timeout=10).status_code == 200
    # A caller's sampled flag wins (parent_based): this one is exported; with one worker the
    # five before it would have been handed over no later.
    r = httpx.get(gh.url + "/sampled", headers={"traceparent": CLIENT_TP}, timeout=10)
    assert r.status_code == 200
    receiver.wait_trace("4bf92f3577b34da6a3ce929d0e0e4736", 2)
    assert {s["trace"] for s in receiver.snapshot()} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    seen = up.headers()
    assert len(seen) == 6
    unsampled = [parse_tp(h["traceparent"]) for h in seen[:5]]
    assert all(not s for _, _, s in unsampled)
    assert len({t for t, _, _ in unsampled}) == 5  # each request its own new trace
    logged = [e["trace_id"] for e in gh.access_log() if e.get("path", "").startswith("/n")]
    assert sorted(logged) == sorted(t for t, _, _ in unsampled)


def test_parent_based_honours_an_unsampled_caller(gatehouse, receiver, upstream_factory):
    up = upstream_factory()
    gh = gatehouse(simple_config(cluster("svc", up), tracing=tracing(receiver.url)), workers=1)
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    assert httpx.get(gh.url + "/a", headers={"traceparent": unsampled},
                     timeout=10).status_code == 200
    assert httpx.get(gh.url + "/b", timeout=10).status_code == 200  # ratio 1: sampled
    b = gh.wait_log(lambda e: e.get("path") == "/b")["trace_id"]
    receiver.wait_trace(b, 2)
    assert {s["trace"] for s in receiver.snapshot()} == {b}
    tid, parent, sampled = parse_tp(up.headers()[0]["traceparent"])
    # Not recorded: the caller's context goes on unchanged.
    assert (tid, parent, sampled) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", False)


def test_always_sample_errors_exports_only_the_5xx(gatehouse, receiver, upstream_factory):
    ok, bad = upstream_factory(), upstream_factory(statuses=[502] * 10)
    gh = gatehouse(simple_config(cluster("ok", ok), cluster("bad", bad), routes=[
        {"name": "ok", "match": {"path_prefix": "/ok"}, "cluster": "ok"},
        {"name": "bad", "match": {"path_prefix": "/bad"}, "cluster": "bad"}],
        tracing=tracing(receiver.url, sample_ratio=0, always_sample_errors=True)), workers=1)
    assert httpx.get(gh.url + "/ok", timeout=10).status_code == 200
    assert httpx.get(gh.url + "/bad", timeout=10).status_code == 502
    bad_trace = gh.wait_log(lambda e: e.get("path") == "/bad")["trace_id"]
    spans = receiver.wait_trace(bad_trace, 2)
    assert {s["trace"] for s in receiver.snapshot()} == {bad_trace}
    server = next(s for s in spans if s["kind"] == 2)
    assert server["status"] == 2 and server["attrs"]["error.type"] == "502"
    # Decided at the end: the upstream was told "not sampled".
    assert not parse_tp(bad.headers()[0]["traceparent"])[2]


def test_b3_single_and_malformed_headers(gatehouse, receiver, upstream_factory):
    up = upstream_factory()
    gh = gatehouse(simple_config(cluster("svc", up), tracing=tracing(
        receiver.url, propagation="b3")), workers=1)
    b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
    assert httpx.get(gh.url + "/b3", headers={"b3": b3}, timeout=10).status_code == 200
    spans = receiver.wait_trace("80f198ee56343ba864fe8b2a57d3eff7", 2)
    server = next(s for s in spans if s["kind"] == 2)
    client = next(s for s in spans if s["kind"] == 3)
    assert server["parent"] == "e457b5a2e4d86bd1"
    assert up.headers()[0]["b3"] == f"80f198ee56343ba864fe8b2a57d3eff7-{client['id']}-1"
    # Malformed context headers are ignored: a new trace, never an error.
    for bad in ({"b3": "zz-not-hex-1"}, {"traceparent": "00-xyz"},
                {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"}):
        r = httpx.get(gh.url + "/bad", headers=bad, timeout=10)
        assert r.status_code == 200
        sent = up.headers()[-1]["b3"]
        assert re.fullmatch(r"[0-9a-f]{32}-[0-9a-f]{16}-1", sent), sent
        assert not sent.startswith("0" * 32)


def test_w3c_multi_b3_request_and_route_without_tracing(gatehouse, receiver, upstream_factory):
    up = upstream_factory()
    gh = gatehouse(simple_config(cluster("svc", up), routes=[
        {"name": "quiet", "match": {"path_prefix": "/health"}, "cluster": "svc",
         "tracing": False},
        {"name": "all", "match": {"path_prefix": "/"}, "cluster": "svc"}],
        tracing=tracing(receiver.url, propagation="b3_multi")), workers=1)
    h = {"x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124", "x-b3-spanid": "0020000000000001",
         "x-b3-sampled": "1"}
    assert httpx.get(gh.url + "/health", headers=h, timeout=10).status_code == 200
    assert up.headers()[0]["x-b3-spanid"] == "0020000000000001"  # passed on untouched
    assert httpx.get(gh.url + "/x", headers=h, timeout=10).status_code == 200
    spans = receiver.wait_trace("463ac35c9f6413ad48485a3953bb6124", 2)
    assert len(spans) == 2  # the /health request made none
    client = next(s for s in spans if s["kind"] == 3)
    sent = up.headers()[1]
    assert sent["x-b3-traceid"] == "463ac35c9f6413ad48485a3953bb6124"
    assert sent["x-b3-spanid"] == client["id"] and sent["x-b3-sampled"] == "1"


def test_policy_decisions_are_span_events(gatehouse, receiver, upstream_factory):
    up = upstream_factory()
    consumers = [{"name": "alice", "credentials": {"api_keys": [{"sha256": sha256_hex("k1")}]}}]
    policies = [{"name": "key_auth", "config": {"consumers": "registry"}},
                {"name": "rate_limit", "config": {"limits": [{"rate": "1/h"}]}}]
    gh = gatehouse(simple_config(cluster("svc", up), consumers=consumers, routes=[
        {"name": "r", "match": {"path_prefix": "/"}, "cluster": "svc", "policies": policies}],
        tracing=tracing(receiver.url)), workers=1)
    statuses = [httpx.get(gh.url + "/e", headers={"x-api-key": "k1"}, timeout=10).status_code
                for _ in range(2)]
    assert statuses == [200, 429]
    assert httpx.get(gh.url + "/e", headers={"x-api-key": "nope"},
                     timeout=10).status_code == 401
    lines = wait_until(lambda: (lambda ls: ls if len(ls) == 3 else None)(
        [e for e in gh.access_log() if e.get("path") == "/e"]), message="3 log lines")
    servers = [next(s for s in receiver.wait_trace(e["trace_id"], 1) if s["kind"] == 2)
               for e in lines]
    events = [[(n, a) for n, a in s["events"]] for s in servers]
    assert events[0][0] == ("auth", {"auth.result": "allowed", "gatehouse.consumer": "alice"})
    assert events[0][1][0] == "rate_limit" and events[0][1][1]["rate_limit.verdict"] == "allowed"
    assert events[1][1][0] == "rate_limit" and events[1][1][1]["rate_limit.verdict"] == "limited"
    assert events[2][0][0] == "auth" and events[2][0][1]["auth.result"] == "denied"
    assert events[2][0][1]["auth.policy"] == "key_auth"


def test_dropped_spans_are_counted_while_the_collector_is_down(gatehouse, upstream_factory):
    up = upstream_factory()
    dead = BackgroundHttpServer(BaseHTTPRequestHandler)
    port = dead.server_address[1]
    dead.stop()  # nothing listens on that port any more
    gh = gatehouse(simple_config(cluster("svc", up), tracing={
        "endpoint": f"http://127.0.0.1:{port}/v1/traces", "export_timeout": "500ms"}))
    for i in range(10):
        assert httpx.get(gh.url + f"/d{i}", timeout=10).status_code == 200

    def dropped():
        m = gh.metrics()
        v = m.get_value("gatehouse_tracing_spans_dropped_total", reason="export_failed")
        return v if v and v >= 20 else None  # 10 server + 10 client spans
    assert wait_until(dropped, timeout=20, message="dropped spans counted") >= 20
    assert gh.metrics().get_value("gatehouse_tracing_spans_exported_total") == 0
