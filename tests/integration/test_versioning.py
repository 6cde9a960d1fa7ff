"""Policy `version` (issue 14, item 4): the API version of a request comes from its path, a
header, a media-type parameter or a query parameter, with a default; each version goes to its
cluster with its path rewritten; deprecated versions carry Deprecation (RFC 9745), Sunset (RFC
8594) and Link headers, answer 410 after their sunset when asked to, and are counted per
consumer."""
import calendar
import email.utils
import hashlib
import json
import subprocess

import httpx
import pytest

from support import GATEHOUSE_BIN, cluster, simple_config

DEPRECATED = "2026-01-01T00:00:00Z"
DEPRECATED_UNIX = calendar.timegm((2026, 1, 1, 0, 0, 0))
FUTURE_SUNSET = "2099-06-30"
PAST_SUNSET = "2026-06-30"


def versions_config(v1, v2, **opts):
    policy = {
        "default": "2",
        "versions": {
            "1": {"cluster": "v1", "deprecated": DEPRECATED, "sunset": FUTURE_SUNSET,
                  "link": "https://docs.example.com/v1-migration"},
            "2": {"cluster": "v2"},
            "0": {"cluster": "v1", "deprecated": "2025-01-01", "sunset": PAST_SUNSET,
                  "gone_after_sunset": True, "sunset_link": "https://docs.example.com/sunset"},
        },
        **opts,
    }
    return simple_config(
        cluster("v1", v1), cluster("v2", v2),
        routes=[{"name": "api", "match": {"path_prefix": "/"},
                 "policies": [{"name": "version", "config": policy}]}])


@pytest.fixture
def v1(echo_factory):
    return echo_factory("v1")


@pytest.fixture
def v2(echo_factory):
    return echo_factory("v2")


def get(gh, path, **kw):
    return httpx.get(gh.url + path, timeout=15, **kw)


def test_version_from_the_path_routes_and_strips(gatehouse, v1, v2):
    gh = gatehouse(versions_config(v1, v2))
    r = get(gh, "/v1/users/7?x=1")
    assert r.status_code == 200
    assert r.json()["upstream"] == "v1" and r.json()["path"] == "/users/7?x=1"
    assert r.headers["deprecation"] == f"@{DEPRECATED_UNIX}"
    assert r.headers["sunset"] == "Tue, 30 Jun 2099 00:00:00 GMT"
    assert email.utils.parsedate_to_datetime(r.headers["sunset"]).year == 2099
    assert r.headers["link"] == ('<https://docs.example.com/v1-migration>; rel="deprecation"; '
                                 'type="text/html"')
    r = get(gh, "/v2/users/7")
    assert r.json()["upstream"] == "v2" and r.json()["path"] == "/users/7"
    assert "deprecation" not in r.headers and "sunset" not in r.headers


def test_default_version_and_unknown_versions(gatehouse, v1, v2):
    gh = gatehouse(versions_config(v1, v2))
    r = get(gh, "/users/7")  # no version: the default (2)
    assert r.json()["upstream"] == "v2" and r.json()["path"] == "/users/7"
    r = get(gh, "/v9/users/7")  # unknown: the default, path left alone
    assert r.json()["upstream"] == "v2" and r.json()["path"] == "/v9/users/7"
    gh.stop()
    gh = gatehouse(versions_config(v1, v2, unknown="reject"), name="reject")
    r = get(gh, "/v9/users/7")
    assert r.status_code == 400 and "unknown API version '9'" in r.json()["error"]
    assert get(gh, "/v2/x").status_code == 200


def test_version_from_a_header(gatehouse, v1, v2):
    gh = gatehouse(versions_config(v1, v2, **{"from": "header"}))
    r = get(gh, "/users", headers={"accept-version": "1"})
    assert r.json()["upstream"] == "v1" and r.json()["path"] == "/users"
    assert r.headers["deprecation"] == f"@{DEPRECATED_UNIX}"
    r = get(gh, "/users", headers={"accept-version": "v2"})  # "v2" names version 2 too
    assert r.json()["upstream"] == "v2"
    # The path is not read when the source is the header.
    r = get(gh, "/v1/users")
    assert r.json()["upstream"] == "v2" and r.json()["path"] == "/v1/users"


def test_version_from_a_media_type_parameter(gatehouse, v1, v2):
    gh = gatehouse(versions_config(v1, v2, **{"from": "media_type", "forward_header": "x-api-version"}))
    r = get(gh, "/users", headers={"accept": "text/html, application/vnd.acme+json; q=0.9; version=1"})
    assert r.json()["upstream"] == "v1"
    assert ["x-api-version", "1"] in r.json()["headers"]
    r = get(gh, "/users", headers={"accept": 'application/vnd.acme+json; version="2"'})
    assert r.json()["upstream"] == "v2" and ["x-api-version", "2"] in r.json()["headers"]


def test_version_from_a_query_parameter_then_the_path(gatehouse, v1, v2):
    gh = gatehouse(versions_config(v1, v2, **{"from": ["query", "path"], "query": "api"}))
    assert get(gh, "/users?api=1").json()["upstream"] == "v1"
    assert get(gh, "/v1/users").json()["upstream"] == "v1"
    assert get(gh, "/users?api=2").json()["upstream"] == "v2"


def test_after_sunset_a_version_is_gone(gatehouse, v1, v2):
    gh = gatehouse(versions_config(v1, v2))
    r = get(gh, "/v0/users")
    assert r.status_code == 410
    assert r.headers["sunset"] == "Tue, 30 Jun 2026 00:00:00 GMT"
    assert r.headers["deprecation"].startswith("@")
    assert 'rel="sunset"' in r.headers["link"]
    assert v1.requests == []  # never forwarded


def test_deprecated_calls_are_counted_per_consumer(gatehouse, v1, v2):
    cfg = versions_config(v1, v2)
    cfg["routes"][0]["policies"].insert(0, {"name": "key_auth", "config": {
        "header": "apikey", "consumers": [
            {"name": "alice", "keys": [{"sha256": hashlib.sha256(b"k-alice").hexdigest()}]},
            {"name": "bob", "keys": [{"sha256": hashlib.sha256(b"k-bob").hexdigest()}]}]}})
    cfg["routes"][0]["policies"][1]["config"]["max_tracked_consumers"] = 1
    gh = gatehouse(cfg)
    for key, n in (("k-alice", 3), ("k-bob", 2)):
        for _ in range(n):
            assert get(gh, "/v1/x", headers={"apikey": key}).status_code == 200
    assert get(gh, "/v2/x", headers={"apikey": "k-alice"}).status_code == 200
    m = gh.metrics()
    name = "gatehouse_deprecated_version_requests_total"
    assert m.value(name, route="default/api", version="1", consumer="alice") == 3
    # Past max_tracked_consumers, consumers share one series.
    assert m.value(name, route="default/api", version="1", consumer="_other") == 2
    assert m.get_value(name, route="default/api", version="2", consumer="alice") is None


def test_bad_version_configs_are_rejected(tmp_path, v1, v2):
    cases = {
        "default": ({"default": "7"}, "default: '7' is not one of the versions"),
        "date": ({"versions": {"1": {"deprecated": "yesterday"}}, "default": "1"},
                 "expected a date"),
        "cluster": ({"versions": {"1": {"cluster": "nope"}}, "default": "1"},
                    "unknown cluster 'nope'"),
        "source": ({"from": "cookie"}, "unknown source 'cookie'"),
        # The route has no cluster: every version needs one.
        "no cluster": ({"versions": {"1": {}, "2": {"cluster": "v2"}}, "default": "2"},
                       "versions.1.cluster: required (the route has no cluster)"),
    }
    for name, (opts, msg) in cases.items():
        cfg = versions_config(v1, v2)
        cfg["routes"][0]["policies"][0]["config"].update(opts)
        cfg["listeners"] = [{"address": "127.0.0.1", "port": 8080}]
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps(cfg, indent=1))
        p = subprocess.run([GATEHOUSE_BIN, "validate", str(path)], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode != 0, name
        assert msg in p.stdout + p.stderr, (name, p.stdout + p.stderr)
        assert f"{path}:" in p.stdout + p.stderr
