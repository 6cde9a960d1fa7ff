"""Policy `aggregate` (issue 14, item 2): one request fans out to three real upstream services
(users, orders, reviews), one of them slow and one failing, and the answers are merged into one
JSON document. Checks parallel and dependency order, required vs optional failures (502 vs a
document marked partial in the body and a header), header and identity propagation, the
client's cancellation reaching the slow upstream, and the per-call metrics."""
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from support import BackgroundHttpServer, cluster, simple_config, wait_until
from test_http2 import H2Conn


class Service(BackgroundHttpServer):
    """An upstream answering JSON per path: `routes` maps a path to (status, body dict,
    delay seconds). Records each request's path and headers; a delayed answer watches its
    connection and records the path in `abandoned` when the gateway closes it first."""

    def __init__(self, routes):
        self.routes = routes
        self.seen = []
        self.abandoned = []
        self.started = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                server = self.server
                with server.lock:
                    server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, body, delay = server.routes.get(self.path, (404, {"error": "nf"}, 0))
                if delay:
                    server.started.set()
                    deadline = time.monotonic() + delay
                    while time.monotonic() < deadline:
                        r, _, _ = select.select([self.connection], [], [], 0.05)
                        if r and not self.connection.recv(1, 2):  # MSG_PEEK: EOF
                            with server.lock:
                                server.abandoned.append(self.path)
                            return
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)

    def paths(self):
        with self.lock:
            return [p for p, _ in self.seen]

    def headers_of(self, path):
        with self.lock:
            return [h for p, h in self.seen if p == path]


@pytest.fixture
def services():
    users = Service({"/users/42": (200, {"id": 42, "name": "Ada"}, 0),
                     "/users/7": (200, {"id": 7, "name": "Bob"}, 0)})
    orders = Service({"/orders/9": (200, {"order": 9, "user_id": 7, "total": 12.5}, 0),
                      "/orders?user=42": (200, [{"order": 1}], 0),
                      "/broken": (503, {"error": "down"}, 0)})
    reviews = Service({"/reviews/42": (200, {"stars": 5}, 5.0),  # slow
                       "/fast/42": (200, {"stars": 4}, 0)})
    yield users, orders, reviews
    for s in (users, orders, reviews):
        s.stop()


def config(services, calls, **opts):
    users, orders, reviews = services
    policy = {"calls": calls, **opts}
    return simple_config(
        cluster("users", users), cluster("orders", orders), cluster("reviews", reviews),
        routes=[{"name": "profile", "match": {"path_prefix": "/profile/"},
                 "policies": [{"name": "aggregate", "config": policy}]},
                {"name": "p", "match": {"path_template": "/p/{id}"},
                 "policies": [{"name": "aggregate", "config": policy}]}])


USER = {"name": "user", "cluster": "users", "path": "/users/{{ request.params.id }}"}
ORDERS = {"name": "orders", "cluster": "orders", "path": "/orders?user={{ request.params.id }}"}


def test_parallel_calls_merge_by_key_and_forward_identity(gatehouse, services):
    users, orders, reviews = services
    calls = [USER, ORDERS, {"name": "reviews", "cluster": "reviews", "path": "/fast/{{ request.params.id }}"}]
    gh = gatehouse(config(services, calls, forward_headers=["x-tenant"],
                          forward_authorization=True))
    r = httpx.get(gh.url + "/p/42", headers={"x-tenant": "acme", "authorization": "Bearer t",
                                             "x-other": "no"}, timeout=15)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"user": {"id": 42, "name": "Ada"}, "orders": [{"order": 1}],
                        "reviews": {"stars": 4}}
    assert "x-aggregate-partial" not in r.headers
    h = users.headers_of("/users/42")[0]
    assert h["x-tenant"] == "acme" and h["authorization"] == "Bearer t"
    assert "x-other" not in h and h["x-request-id"]
    m = gh.metrics()
    assert m.value("gatehouse_aggregate_calls_total", route="default/p", call="orders") == 1
    assert m.value("gatehouse_aggregate_call_duration_seconds_count", route="default/p",
                   call="reviews") == 1
    # Each call is counted on its cluster like a proxied request.
    assert m.value("gatehouse_upstream_requests_total", cluster="users") >= 1


def test_dependency_order_reads_a_field_of_an_earlier_answer(gatehouse, services):
    users, orders, _ = services
    calls = [{"name": "owner", "cluster": "users", "path": "/users/{{ calls.order.body./user_id }}"},
             {"name": "order", "cluster": "orders", "path": "/orders/{{ request.params.id }}"}]
    gh = gatehouse(config(services, calls, merge="keys"))
    r = httpx.get(gh.url + "/p/9", timeout=15)
    assert r.status_code == 200, r.text
    assert r.json() == {"order": {"order": 9, "user_id": 7, "total": 12.5},
                        "owner": {"id": 7, "name": "Bob"}}
    assert users.paths() == ["/users/7"] and orders.paths() == ["/orders/9"]


def test_deep_merge_and_json_pointer_placement(gatehouse, services):
    calls = [dict(USER, at="/data/person"), {"name": "o", "cluster": "orders", "path": "/orders/9",
                                              "at": "/data/last_order"}]
    gh = gatehouse(config(services, calls))
    r = httpx.get(gh.url + "/p/42", timeout=15)
    assert r.json() == {"data": {"person": {"id": 42, "name": "Ada"},
                                 "last_order": {"order": 9, "user_id": 7, "total": 12.5}}}
    gh.stop()
    calls = [USER | {"path": "/users/42"}, {"name": "o", "cluster": "orders", "path": "/orders/9"}]
    gh = gatehouse(config(services, calls, merge="deep"), name="deep")
    assert httpx.get(gh.url + "/p/1", timeout=15).json() == {
        "id": 42, "name": "Ada", "order": 9, "user_id": 7, "total": 12.5}


def test_failing_optional_call_marks_the_document_partial(gatehouse, services):
    calls = [USER, {"name": "stock", "cluster": "orders", "path": "/broken", "required": False}]
    gh = gatehouse(config(services, calls))
    r = httpx.get(gh.url + "/p/42", timeout=15)
    assert r.status_code == 200
    assert r.headers["x-aggregate-partial"] == "stock"
    body = r.json()
    assert body["user"] == {"id": 42, "name": "Ada"} and body["stock"] is None
    assert body["_partial"] == ["stock"]
    assert body["_errors"] == {"stock": {"reason": "status", "status": 503}}
    m = gh.metrics()
    assert m.value("gatehouse_aggregate_call_failures_total", route="default/p", call="stock",
                   reason="status") == 1


def test_failing_required_call_is_a_502(gatehouse, services):
    calls = [USER, {"name": "stock", "cluster": "orders", "path": "/broken"},
             {"name": "after", "cluster": "users", "path": "/users/{{ calls.stock.body./id }}",
              "required": False}]
    gh = gatehouse(config(services, calls))
    r = httpx.get(gh.url + "/p/42", timeout=15)
    assert r.status_code == 502
    assert r.headers["x-aggregate-failed"] == "stock"
    assert "stock" in r.json()["error"] and r.json()["request_id"]
    # The call that read the failed one was never sent.
    assert services[0].paths() == ["/users/42"]


def test_slow_optional_call_times_out_into_a_partial_document(gatehouse, services):
    _, _, reviews = services
    calls = [USER, {"name": "reviews", "cluster": "reviews", "path": "/reviews/{{ request.params.id }}",
                    "timeout": "300ms", "required": False}]
    gh = gatehouse(config(services, calls))
    t0 = time.monotonic()
    r = httpx.get(gh.url + "/p/42", timeout=15)
    assert time.monotonic() - t0 < 4.0
    assert r.status_code == 200
    assert r.headers["x-aggregate-partial"] == "reviews"
    assert r.json()["_errors"]["reviews"]["reason"] == "timeout"
    wait_until(lambda: "/reviews/42" in reviews.abandoned, message="slow call abandoned")


def test_slow_required_call_times_out_into_a_502(gatehouse, services):
    calls = [USER, {"name": "reviews", "cluster": "reviews", "path": "/reviews/{{ request.params.id }}",
                    "timeout": "300ms"}]
    gh = gatehouse(config(services, calls))
    r = httpx.get(gh.url + "/p/42", timeout=15)
    assert r.status_code == 502 and r.headers["x-aggregate-failed"] == "reviews"


def test_client_cancellation_cancels_the_calls(gatehouse, services):
    _, _, reviews = services
    calls = [USER, {"name": "reviews", "cluster": "reviews", "path": "/reviews/{{ request.params.id }}",
                    "timeout": "10s"}]
    gh = gatehouse(config(services, calls))
    c = H2Conn(gh.port)
    sid = c.request("GET", "/p/42")
    assert reviews.started.wait(10), "the slow call reached its upstream"
    import h2.errors
    c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    c.flush()
    # The slow upstream sees its connection closed long before its 5 s answer.
    t0 = time.monotonic()
    wait_until(lambda: "/reviews/42" in reviews.abandoned, timeout=4.0,
               message="slow upstream saw the call abandoned")
    assert time.monotonic() - t0 < 4.0
    wait_until(lambda: gh.metrics().get_value("gatehouse_aggregate_call_failures_total",
                                              route="default/p", call="reviews",
                                              reason="cancelled") == 1,
               message="cancelled call counted")
    c.close()


def test_http1_client_hang_up_cancels_the_calls(gatehouse, services):
    """An HTTP/1.1 client that closes its connection while the calls run: no reader is waiting
    on its socket, yet the FIN alone must cancel the slow call."""
    _, _, reviews = services
    calls = [USER, {"name": "reviews", "cluster": "reviews", "path": "/reviews/{{ request.params.id }}",
                    "timeout": "10s"}]
    gh = gatehouse(config(services, calls))
    s = socket.create_connection(("127.0.0.1", gh.port))
    s.sendall(b"GET /p/42 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reviews.started.wait(10), "the slow call reached its upstream"
    t0 = time.monotonic()
    s.close()
    # The slow upstream sees its connection closed long before its 5 s answer.
    wait_until(lambda: "/reviews/42" in reviews.abandoned, timeout=4.0,
               message="slow upstream saw the call abandoned")
    assert time.monotonic() - t0 < 4.0
    wait_until(lambda: gh.metrics().get_value("gatehouse_aggregate_call_failures_total",
                                              route="default/p", call="reviews",
                                              reason="cancelled") == 1,
               message="cancelled call counted")


def test_http1_client_hang_up_abandons_a_proxied_request(gatehouse, services):
    """A plain proxied request: the client's FIN abandons the upstream call and closes its
    connection (a pooled one would stay open), and the gateway goes on serving."""
    _, _, reviews = services
    gh = gatehouse(simple_config(cluster("reviews", reviews)))
    s = socket.create_connection(("127.0.0.1", gh.port))
    s.sendall(b"GET /reviews/42 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reviews.started.wait(10), "the request reached the slow upstream"
    t0 = time.monotonic()
    s.close()
    wait_until(lambda: "/reviews/42" in reviews.abandoned, timeout=4.0,
               message="slow upstream saw its connection closed")
    assert time.monotonic() - t0 < 4.0
    r = httpx.get(f"http://127.0.0.1:{gh.port}/fast/42", timeout=10)
    assert r.status_code == 200 and r.json() == {"stars": 4}


def test_bad_configs_are_rejected_with_their_line(gatehouse, services, tmp_path):
    import subprocess

    from support import GATEHOUSE_BIN
    cases = {
        "cycle": ([{"name": "a", "cluster": "users", "path": "/{{ calls.b.body./x }}"},
                   {"name": "b", "cluster": "users", "path": "/{{ calls.a.body./y }}"}],
                  "dependency cycle a -> b -> a"),
        "unknown call": ([{"name": "a", "cluster": "users", "path": "/{{ calls.zz.body./x }}"}],
                         "unknown call 'zz'"),
        "bad ref": ([{"name": "a", "cluster": "users", "path": "/{{ request.nope }}"}],
                    "unknown variable"),
        "old syntax": ([{"name": "a", "cluster": "users", "path": "/{request.params.id}"}],
                       "is the old syntax"),
        "unknown cluster": ([{"name": "a", "cluster": "nope", "path": "/"}],
                            "unknown cluster 'nope'"),
    }
    for name, (calls, msg) in cases.items():
        cfg = config(services, calls)
        cfg["listeners"] = [{"address": "127.0.0.1", "port": 8080}]
        path = tmp_path / f"{name.replace(' ', '_')}.yaml"
        path.write_text(json.dumps(cfg, indent=1))
        p = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0, name
        err = p.stdout + p.stderr
        assert msg in err, (name, err)
        assert f"{path}:" in err, (name, err)  # file:line


def test_consumer_propagates_and_a_call_after_a_failed_optional_one_is_skipped(gatehouse,
                                                                                services):
    import hashlib
    users, orders, _ = services
    calls = [USER,
             {"name": "stock", "cluster": "orders", "path": "/broken", "required": False},
             {"name": "detail", "cluster": "users", "path": "/users/{{ calls.stock.body./id }}",
              "required": False, "headers": {"x-who": "{{ consumer.name }}"}}]
    cfg = config(services, calls)
    cfg["routes"][1]["policies"].insert(0, {"name": "key_auth", "config": {"consumers": [
        {"name": "alice", "keys": [{"sha256": hashlib.sha256(b"k-alice").hexdigest()}]}]}})
    gh = gatehouse(cfg)
    r = httpx.get(gh.url + "/p/42", headers={"x-api-key": "k-alice"}, timeout=15)
    assert r.status_code == 200, r.text
    assert r.json()["_partial"] == ["stock", "detail"]
    assert r.json()["_errors"]["detail"] == {"reason": "skipped"}
    assert r.headers["x-aggregate-partial"] == "stock, detail"
    assert users.headers_of("/users/42")[0]["x-consumer"] == "alice"
    assert users.paths() == ["/users/42"]  # `detail` was never sent
    assert httpx.get(gh.url + "/p/42", timeout=15).status_code == 401


def test_template_merge_shapes_the_answer_from_the_calls(gatehouse, services):
    """merge: template: the body is the template rendered over the calls' answers; a failed
    optional call renders its `default` and is still marked partial."""
    calls = [USER, ORDERS,
             {"name": "broken", "cluster": "orders", "path": "/broken", "required": False}]
    template = ('{"name": {{ calls.user.body./name | json }}, "orders": {{ calls.orders.body }},'
                ' "first": {{ calls.orders.body./0/order }}, "status": {{ calls.user.status }},'
                ' "broken": {{ calls.broken.body./error | default "null" }},'
                ' "id": {{ request.params.id | json }}}')
    gh = gatehouse(config(services, calls, merge="template", template=template))
    r = httpx.get(gh.url + "/p/42", timeout=15)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "Ada", "orders": [{"order": 1}], "first": 1, "status": 200,
                        "broken": None, "id": "42", "_partial": ["broken"],
                        "_errors": {"broken": {"reason": "status", "status": 503}}}
    assert r.headers["x-aggregate-partial"] == "broken"
