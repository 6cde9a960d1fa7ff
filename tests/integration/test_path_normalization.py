"""Path normalisation before routing: the route that matches, and the path the upstream sees,
are those of the normalised path, so "/public/../admin" cannot reach an /admin route while
looking like /public, and encoded tricks are refused."""
import pytest

from support import cluster, simple_config


@pytest.fixture
def gh(gatehouse, recorder):
    g = gatehouse(simple_config(cluster("rec", recorder), routes=[
        {"name": "admin", "match": {"path_prefix": "/admin"},
         "direct_response": {"status": 200, "body": "admin-area"}},
        {"name": "public", "match": {"path_prefix": "/public"}, "cluster": "rec"},
    ]))
    g.recorder = recorder
    return g


def send(gh, target):
    with gh.conn() as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: gh.test\r\n\r\n".encode("latin-1"))
        return c.read_response()


@pytest.mark.parametrize("target", [
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/public/./../admin/",
    "/public//..//admin",
])
def test_dot_segments_resolve_before_routing(gh, target):
    r = send(gh, target)
    assert r.status == 200 and r.body == b"admin-area", (r.status, r.body[:200])
    assert gh.recorder.total_bytes() == 0, gh.recorder.all_bytes()[:300]
    e = gh.wait_log(lambda e: e.get("route") == "admin")
    assert e["path"].startswith("/admin")


@pytest.mark.parametrize("target,upstream_sees", [
    pytest.param("/public/a/../b", "/public/b"),
    pytest.param("/public/./x//y", "/public/x/y"),
    pytest.param("/public/%7Euser/%41", "/public/~user/A"),
    pytest.param("/public/q?x=../y&z=%2F", "/public/q?x=../y&z=%2F"),
    pytest.param("/public/plain", "/public/plain"),
])
def test_upstream_sees_the_normalised_path(gh, target, upstream_sees):
    r = send(gh, target)
    assert r.status == 200 and r.body == b"recorded"
    [req] = gh.recorder.request_list()
    assert req.request_line == f"GET {upstream_sees} HTTP/1.1"


@pytest.mark.parametrize("target", [
    pytest.param("/public/a%2Fb"),
    pytest.param("/public/a%2fb"),
    pytest.param("/public/a%5Cb"),
    pytest.param("/public/%00"),
    pytest.param("/public/a%00.txt"),
    pytest.param("/public\\..\\admin"),
    pytest.param("/public/a\\b"),
    pytest.param("/.."),
    pytest.param("/public/../../admin"),
    pytest.param("/public/%2e%2e/%2e%2e/admin"),
    pytest.param("/public/%zz"),
    pytest.param("/public/#frag"),
])
def test_ambiguous_paths_are_400_and_never_forwarded(gh, target):
    r = send(gh, target)
    assert r.status == 400, (r.status, r.body[:200])
    assert gh.recorder.total_bytes() == 0, gh.recorder.all_bytes()[:300]
    # The route stays reachable with a clean path.
    assert send(gh, "/public/ok").status == 200
