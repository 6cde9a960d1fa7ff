"""Policies calling services through clusters (proxy/cluster_client.h): jwt_auth's remote JWKS
and oauth2_introspection's endpoint, named by a configured cluster or by a URL (an implicit
cluster per origin). The calls reuse pooled connections, skip a host that is down as the
cluster's retry policy says, and follow the cluster's DNS resolution."""
import shutil
import subprocess
import time

import httpx
import pytest

from support import Gatehouse, cluster, simple_config, wait_until
from support.authserver import IntrospectionServer, JwksServer
from support.common import GATEHOUSE_BIN, free_port
from test_jwt_auth import bearer, jwks_doc, jwt_policy, token


def routed(echo, policy, **extra):
    return simple_config(cluster("echo", echo), routes=[
        {"name": "p", "match": {"path_prefix": "/"}, "cluster": "echo", "policies": [policy]}],
        **extra)


def with_cluster(config, idp_cluster):
    config["clusters"].append(idp_cluster)
    return config


def introspection(**opts):
    cfg = {"client_id": "gatehouse", "client_secret": "s3cr3t:+/"}
    cfg.update(opts)
    return {"name": "oauth2_introspection", "config": cfg}


def active(sub):
    return {"active": True, "sub": sub, "exp": int(time.time()) + 600}


def client(gh):
    return httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0)


def jwks_path(server):
    return server.url.split(str(server.port), 1)[1]


def test_jwks_from_a_named_cluster(gatehouse, echo):
    jwks = JwksServer(jwks_doc("rsa")).start()
    try:
        policy = jwt_policy(jwks=None, jwks_cluster="idp", jwks_path=jwks_path(jwks))
        gh = gatehouse(with_cluster(routed(echo, policy),
                                    cluster("idp", f"127.0.0.1:{jwks.port}")))
        with client(gh) as c:
            assert c.get("/a", headers=bearer(token("RS256"))).status_code == 200
        assert jwks.fetch_count() == 1
        m = gh.metrics()
        assert m.value("gatehouse_jwt_jwks_fetches_total",
                       uri="cluster:idp/.well-known/jwks.json", result="ok") == 1
        # The fetch is counted on the cluster like a proxied request.
        assert m.value("gatehouse_upstream_requests_total", cluster="idp") >= 1
    finally:
        jwks.stop()


def test_jwks_refetches_reuse_one_pooled_connection(gatehouse, echo):
    jwks = JwksServer(jwks_doc("rsa")).start()
    try:
        policy = jwt_policy(jwks=None, jwks_uri=jwks.url, jwks_min_refetch="0s")
        gh = gatehouse(routed(echo, policy), workers=1)
        with client(gh) as c:
            assert c.get("/a", headers=bearer(token("RS256"))).status_code == 200
            # Each new kid makes the worker fetch again (no rate limit here).
            for kid in ("p256", "p384", "ed"):
                jwks.set(jwks_doc("rsa", kid))
                alg = {"p256": "ES256", "p384": "ES384", "ed": "EdDSA"}[kid]
                wait_until(lambda: c.get("/b", headers=bearer(token(alg))).status_code == 200,
                           message=f"token with kid {kid} accepted after a refetch")
        assert jwks.fetch_count() >= 4
        assert jwks.connection_count() == 1
        implicit = f"http://127.0.0.1:{jwks.port}"
        assert gh.metrics().value("gatehouse_upstream_pool_reused_total", cluster=implicit) >= 3
    finally:
        jwks.stop()


def test_introspections_reuse_pooled_connections(gatehouse, echo):
    idp = IntrospectionServer().start()
    try:
        for i in range(6):
            idp.tokens[f"t{i}"] = active(f"user{i}")
        gh = gatehouse(routed(echo, introspection(endpoint=idp.url)), workers=1)
        with client(gh) as c:
            for i in range(6):  # a new token each time: the cache does not answer
                assert c.get("/x", headers=bearer(f"t{i}")).status_code == 200
        assert idp.call_count() == 6
        assert idp.connection_count() == 1
    finally:
        idp.stop()


def test_introspection_from_a_named_cluster_skips_a_host_that_is_down(gatehouse, echo):
    idp = IntrospectionServer().start()
    try:
        for i in range(8):
            idp.tokens[f"t{i}"] = active(f"user{i}")
        dead = f"127.0.0.1:{free_port()}"
        idp_cluster = cluster("idp", dead, f"127.0.0.1:{idp.port}",
                              retry={"attempts": 2, "on": ["connect-failure"]})
        policy = introspection(endpoint_cluster="idp", endpoint_path="/oauth2/introspect")
        gh = gatehouse(with_cluster(routed(echo, policy), idp_cluster), workers=1)
        with client(gh) as c:
            for i in range(8):  # round robin: half of the first attempts hit the dead host
                assert c.get("/x", headers=bearer(f"t{i}")).status_code == 200
        assert idp.call_count() == 8
        m = gh.metrics()
        assert m.value("gatehouse_upstream_connect_failures_total", cluster="idp") >= 1
        assert m.value("gatehouse_upstream_retries_total", cluster="idp",
                       reason="connect_failure") >= 1
    finally:
        idp.stop()


def test_unknown_cluster_names_are_config_errors(tmp_path, echo):
    config = simple_config(cluster("echo", echo), routes=[
        {"name": "p", "match": {"path_prefix": "/"}, "cluster": "echo", "policies": [
            jwt_policy(jwks=None, jwks_cluster="nope", jwks_path="/keys"),
            introspection(endpoint_cluster="nada", endpoint_path="/i")]}])
    g = Gatehouse(tmp_path, config, name="bad")
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "jwks_cluster: unknown cluster 'nope'" in out.stderr, out.stderr
    assert "endpoint_cluster: unknown cluster 'nada'" in out.stderr, out.stderr


@pytest.mark.skipif(not shutil.which("dnsmasq") and not shutil.which("/usr/sbin/dnsmasq"),
                    reason="dnsmasq not installed (scripts/bootstrap)")
def test_jwks_cluster_follows_its_dns_resolution(gatehouse, echo, tmp_path):
    from test_dns_discovery import Dnsmasq
    jwks = JwksServer(jwks_doc("p256")).start()
    d = Dnsmasq(tmp_path, hosts="127.0.0.1 idp.test\n").start()
    try:
        idp_cluster = {"name": "idp", "dns": {
            "name": "idp.test", "type": "A", "port": jwks.port, "refresh": "200ms",
            "resolvers": [f"127.0.0.1:{d.port}"]}}
        policy = jwt_policy(jwks=None, jwks_cluster="idp", jwks_path=jwks_path(jwks))
        gh = gatehouse(with_cluster(routed(echo, policy), idp_cluster))
        with client(gh) as c:
            # The first fetch may run before the first answer (no host yet): it is retried.
            wait_until(lambda: c.get("/a", headers=bearer(token("ES256"))).status_code == 200,
                       timeout=30, message="JWKS fetched from the resolved host")
        assert gh.metrics().value("gatehouse_upstream_cluster_hosts", cluster="idp") == 1
    finally:
        d.stop()
        jwks.stop()
