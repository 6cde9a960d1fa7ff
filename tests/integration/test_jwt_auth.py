"""Policy jwt_auth against a real gatehouse and echo upstream, with tokens made by PyJWT and
keys made by cryptography: every algorithm, every rejection reason, token sources, claim
forwarding, scope rules, and a remote JWKS that is refetched on an unknown kid and rotated."""
import base64
import hashlib
import hmac
import json
import subprocess
import threading
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from support import Gatehouse, cluster, simple_config, wait_until
from support.common import GATEHOUSE_BIN, free_port
from support.authserver import JwksServer

ISS = "https://idp.test/"
AUD = "orders-api"
HS_SECRET = b"0123456789abcdef0123456789abcdef-hmac-secret"


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_keys():
    keys = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
    }
    return keys


KEYS = make_keys()
# alg -> (signing key, kid)
SIGNERS = {
    "HS256": (HS_SECRET, "hs"), "HS384": (HS_SECRET, "hs"), "HS512": (HS_SECRET, "hs"),
    "RS256": (KEYS["rsa"], "rsa"), "RS384": (KEYS["rsa"], "rsa"), "RS512": (KEYS["rsa"], "rsa"),
    "PS256": (KEYS["rsa"], "rsa"), "PS384": (KEYS["rsa"], "rsa"), "PS512": (KEYS["rsa"], "rsa"),
    "ES256": (KEYS["p256"], "p256"), "ES384": (KEYS["p384"], "p384"), "EdDSA": (KEYS["ed"], "ed"),
}


def public_jwk(private, kid):
    if isinstance(private, rsa.RSAPrivateKey):
        j = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        j = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    else:
        j = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    j["kid"] = kid
    j["use"] = "sig"
    return j


def jwks_doc(*names):
    keys = [public_jwk(KEYS[n], n) for n in names]
    return {"keys": keys}


INLINE_JWKS = jwks_doc("rsa", "p256", "p384", "ed")
INLINE_JWKS["keys"].append({"kty": "oct", "kid": "hs", "k": b64u(HS_SECRET)})


def claims(**over):
    now = int(time.time())
    c = {"iss": ISS, "aud": AUD, "sub": "alice", "iat": now, "exp": now + 300,
         "jti": uuid.uuid4().hex, "groups": ["admins", "ops"], "scope": "orders:read profile",
         "email": "alice@example.test"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def token(alg="RS256", kid=None, **over):
    key, default_kid = SIGNERS[alg]
    return jwt.encode(claims(**over), key, algorithm=alg,
                      headers={"kid": kid if kid is not None else default_kid})


def unsigned(header: dict, payload: dict, sig: bytes = b"") -> str:
    return (b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(payload).encode()) + "." +
            b64u(sig))


def jwt_policy(**opts):
    cfg = {"jwks": json.dumps(INLINE_JWKS), "issuers": [ISS], "audiences": [AUD],
           "groups_claim": "groups", "forward_claims": {"sub": "x-jwt-sub", "email": "x-jwt-email"}}
    cfg.update(opts)
    if cfg["jwks"] is None:  # remote keys only
        del cfg["jwks"]
    return {"name": "jwt_auth", "config": cfg}


def routed(echo, *policies, routes=None, **extra):
    routes = routes or [{"name": "p", "match": {"path_prefix": "/"}, "cluster": "echo",
                         "policies": list(policies)}]
    return simple_config(cluster("echo", echo), routes=routes, **extra)


def client(gh):
    return httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0)


def bearer(t):
    return {"authorization": f"Bearer {t}"}


def upstream_headers(resp):
    out = {}
    for k, v in resp.json()["headers"]:
        out.setdefault(k, []).append(v)
    return out


def rejections(gh, reason):
    return gh.metrics().get_value("gatehouse_auth_rejections_total", policy="jwt_auth",
                                  reason=reason) or 0


def assert_401(r, token_present=True):
    assert r.status_code == 401, r.text
    want = 'Bearer realm="gatehouse"'
    if token_present:
        want += ', error="invalid_token"'
    assert r.headers["www-authenticate"] == want
    body = r.json()
    assert body["status"] == 401 and body["request_id"]


def test_every_algorithm_verifies_and_forwards_claims(gatehouse, echo):
    gh = gatehouse(routed(echo, jwt_policy(), access_log={"fields": ["path", "consumer"]}))
    with client(gh) as c:
        for alg in SIGNERS:
            t = token(alg)
            r = c.get(f"/alg/{alg}", headers={**bearer(t), "x-jwt-sub": "mallory"})
            assert r.status_code == 200, (alg, r.text)
            h = upstream_headers(r)
            assert h["x-jwt-sub"] == ["alice"], alg  # the spoofed copy was removed
            assert h["x-jwt-email"] == ["alice@example.test"]
            assert h["authorization"] == [f"Bearer {t}"]
    entry = gh.wait_log(lambda e: e["path"] == "/alg/EdDSA")
    assert entry["consumer"] == "alice"


def test_rejections_answer_401_and_count_reasons(gatehouse, echo):
    gh = gatehouse(routed(echo, jwt_policy()))
    now = int(time.time())
    rsa_pem = KEYS["rsa"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # HS256 "signed" with the RSA public key as the HMAC secret (the classic confusion).
    header = {"alg": "HS256", "kid": "rsa"}
    payload = claims()
    signing_input = (b64u(json.dumps(header).encode()) + "." +
                     b64u(json.dumps(payload).encode())).encode()
    confused = signing_input.decode() + "." + b64u(
        hmac.new(rsa_pem, signing_input, hashlib.sha256).digest())
    good = token("ES256")
    tampered = good.split(".")
    tampered[1] = b64u(json.dumps(claims(sub="admin")).encode())
    cases = [
        ("expired", token(exp=now - 3600, iat=now - 7200)),
        ("not_yet_valid", token(nbf=now + 3600)),
        ("wrong_audience", token(aud="other-api")),
        ("wrong_issuer", token(iss="https://evil.test/")),
        ("bad_signature", ".".join(tampered)),
        ("algorithm", unsigned({"alg": "none"}, claims())),
        ("bad_signature", confused),
        ("unknown_kid", token(kid="nope")),
        ("claims", token(exp=None)),
        ("malformed", "not-a-jwt"),
    ]
    with client(gh) as c:
        for reason, t in cases:
            before = rejections(gh, reason)
            r = c.get("/x", headers=bearer(t))
            assert_401(r)
            assert r.json()["error"] == "invalid token", reason  # no detail leaks
            assert rejections(gh, reason) == before + 1, reason
        r = c.get("/x")
        assert_401(r, token_present=False)
        assert rejections(gh, "missing") == 1
        assert_401(c.get("/x", headers={"authorization": f"Basic {good}"}))
        assert c.get("/x", headers=bearer(good)).status_code == 200
    assert echo.request_count() == 1


def test_algorithm_allow_list_and_pinned_key(gatehouse, echo):
    gh = gatehouse(routed(echo, jwt_policy(algorithms=["ES256", "EdDSA"])))
    with client(gh) as c:
        assert c.get("/x", headers=bearer(token("ES256"))).status_code == 200
        assert_401(c.get("/x", headers=bearer(token("RS256"))))
        assert_401(c.get("/x", headers=bearer(token("HS256"))))
    assert rejections(gh, "algorithm") == 2


def test_scopes_and_claim_rules_per_route_answer_403(gatehouse, echo):
    routes = [
        {"name": "read", "match": {"path_prefix": "/read"}, "cluster": "echo",
         "policies": [jwt_policy(scopes=["orders:read"])]},
        {"name": "write", "match": {"path_prefix": "/write"}, "cluster": "echo",
         "policies": [jwt_policy(scopes=["orders:read", "orders:write"])]},
        {"name": "admin", "match": {"path_prefix": "/admin"}, "cluster": "echo",
         "policies": [jwt_policy(claims={"groups": ["admins"], "tenant.tier": "gold"})]},
    ]
    gh = gatehouse(routed(echo, routes=routes))
    with client(gh) as c:
        t = token("ES256", tenant={"tier": "gold"})
        assert c.get("/read", headers=bearer(t)).status_code == 200
        for _ in range(2):  # the second answer comes from the verified-token cache
            r = c.get("/write", headers=bearer(t))
            assert r.status_code == 403
            assert r.json()["error"] == "insufficient scope"
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        scp = token("ES256", scope=None, scp=["orders:read", "orders:write"])
        assert c.get("/write", headers=bearer(scp)).status_code == 200
        assert c.get("/admin", headers=bearer(t)).status_code == 200
        assert c.get("/admin", headers=bearer(token("ES256", groups=["users"],
                                                     tenant={"tier": "gold"}))).status_code == 403
        assert c.get("/admin", headers=bearer(token("ES256", tenant={"tier": "free"}))
                     ).status_code == 403
    assert rejections(gh, "insufficient_scope") == 4


def test_cookie_and_query_sources_and_anonymous(gatehouse, echo):
    gh = gatehouse(routed(echo, jwt_policy(header=None, cookie="session", query="access_token",
                                           anonymous="guest"),
                          access_log={"fields": ["path", "consumer"]}))
    t = token("EdDSA")
    with client(gh) as c:
        r = c.get("/c", headers={"cookie": f"theme=dark; session={t}"})
        assert r.status_code == 200 and upstream_headers(r)["x-jwt-sub"] == ["alice"]
        r = c.get(f"/q?a=1&access_token={t}")
        assert r.status_code == 200
        # The Authorization header is not a configured source here.
        r = c.get("/anon", headers=bearer(t))
        assert r.status_code == 200 and "x-jwt-sub" not in upstream_headers(r)
        assert_401(c.get(f"/dup?access_token={t}&access_token={t}"))
        assert_401(c.get("/bad", headers={"cookie": "session=garbage"}))
    assert gh.wait_log(lambda e: e["path"] == "/anon")["consumer"] == "guest"


def test_strip_token_keeps_it_from_the_upstream(gatehouse, echo):
    gh = gatehouse(routed(echo, jwt_policy(cookie="session", query="access_token",
                                           strip_token=True)))
    t = token("ES256")
    with client(gh) as c:
        r = c.get("/h?x=1", headers=bearer(t))
        assert r.status_code == 200
        assert "authorization" not in upstream_headers(r)
        r = c.get("/c", headers={"cookie": f"a=1; session={t}; b=2"})
        assert r.status_code == 200
        assert upstream_headers(r)["cookie"] == ["a=1; b=2"]
        r = c.get("/k", headers={"cookie": f"session={t}"})
        assert r.status_code == 200 and "cookie" not in upstream_headers(r)
        r = c.get(f"/q?a=1&access_token={t}&b=2")
        assert r.status_code == 200 and r.json()["path"] == "/q?a=1&b=2"
        assert upstream_headers(r)["x-jwt-sub"] == ["alice"]


def test_remote_jwks_unknown_kid_refetch_rate_limit_and_rotation(gatehouse, echo):
    jwks = JwksServer(jwks_doc("rsa")).start()
    try:
        gh = gatehouse(routed(echo, jwt_policy(jwks=None, jwks_uri=jwks.url,
                                               jwks_min_refetch="1s", jwks_refresh="2s",
                                               cache_ttl="1s")))
        with client(gh) as c:
            assert c.get("/a", headers=bearer(token("RS256"))).status_code == 200
            assert jwks.fetch_count() == 1  # one fetch shared by every worker
            # A reload keeps the loaded key set (same URL): no refetch, no 503 window.
            assert gh.reload() == "success"
            assert c.get("/a2", headers=bearer(token("RS256"))).status_code == 200
            assert jwks.fetch_count() == 1
            # A new key appears at the IdP: its first token triggers a refetch.
            jwks.set(jwks_doc("rsa", "p256"))
            wait_until(lambda: c.get("/b", headers=bearer(token("ES256"))).status_code == 200,
                       message="token with a new kid accepted after a JWKS refetch")
            fetched = jwks.fetch_count()
            assert 2 <= fetched <= 3
            # A burst of unknown kids costs at most one more fetch (rate limited).
            for _ in range(10):
                assert_401(c.get("/c", headers=bearer(token("ES384"))))
            assert jwks.fetch_count() <= fetched + 1
            assert rejections(gh, "unknown_kid") >= 10
            # Rotation: the IdP drops the RSA key; the periodic refresh picks that up.
            jwks.set(jwks_doc("p256"))
            wait_until(lambda: c.get("/d", headers=bearer(token("RS256"))).status_code == 401,
                       timeout=30, message="token of a removed key refused after refresh")
            assert c.get("/e", headers=bearer(token("ES256"))).status_code == 200
    finally:
        jwks.stop()


def test_first_requests_on_every_worker_wait_for_one_slow_fetch(gatehouse, echo):
    jwks = JwksServer(jwks_doc("p256"))
    jwks.delay = 0.5
    jwks.start()
    try:
        gh = gatehouse(routed(echo, jwt_policy(jwks=None, jwks_uri=jwks.url)), workers=2)
        statuses = []

        def one(i):
            # A new connection each: the kernel spreads them over both workers.
            with client(gh) as c:
                statuses.append(c.get(f"/w{i}", headers=bearer(token("ES256"))).status_code)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200] * 8
        assert jwks.fetch_count() == 1
    finally:
        jwks.stop()


def test_remote_jwks_unreachable_is_503_then_recovers(gatehouse, echo):
    jwks = JwksServer(jwks_doc("p256"))
    jwks.status = 500
    jwks.start()
    try:
        gh = gatehouse(routed(echo, jwt_policy(jwks=None, jwks_uri=jwks.url,
                                               jwks_min_refetch="1s")))
        with client(gh) as c:
            r = c.get("/a", headers=bearer(token("ES256")))
            assert r.status_code == 503
            assert rejections(gh, "keys_unavailable") >= 1
            m = gh.metrics()
            assert m.value("gatehouse_jwt_jwks_fetches_total", uri=jwks.url, result="error") >= 1
            assert m.value("gatehouse_jwt_jwks_fetches_total", uri=jwks.url, result="ok") == 0
            jwks.status = 200
            wait_until(lambda: c.get("/a", headers=bearer(token("ES256"))).status_code == 200,
                       message="JWKS loaded after the IdP recovered")
            assert gh.metrics().value("gatehouse_jwt_jwks_fetches_total", uri=jwks.url,
                                      result="ok") == 1
    finally:
        jwks.stop()


def test_config_errors_name_the_option(tmp_path, echo):
    g = Gatehouse(tmp_path, routed(echo, {"name": "jwt_auth", "config": {
        "keys": [{"secret": "short"}]}}), name="bad")
    g.port, g.admin_port = free_port(), free_port()  # never bound: only validated
    g.write_config()
    out = subprocess.run([GATEHOUSE_BIN, "validate", str(g.config_path)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "policies[0]" in out.stderr and "keys[0]" in out.stderr, out.stderr
    assert "32 bytes" in out.stderr


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_verified_token_cache_serves_repeat_requests(gatehouse, echo, alg):
    gh = gatehouse(routed(echo, jwt_policy()), workers=1)
    t = token(alg)
    with client(gh) as c:
        for _ in range(20):
            assert c.get("/x", headers=bearer(t)).status_code == 200
        # An expired token is refused even though an earlier copy would have been cached.
        old = token(alg, exp=int(time.time()) - 120, iat=int(time.time()) - 600)
        assert_401(c.get("/x", headers=bearer(old)))


def ip_cert(tmp_path):
    """A self-signed P-256 certificate for IP 127.0.0.1 (it is its own CA)."""
    key, crt = tmp_path / "jwks.key", tmp_path / "jwks.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return str(crt), str(key)


def test_remote_jwks_over_https_is_verified(gatehouse, echo, tmp_path):
    crt, key = ip_cert(tmp_path)
    doc = jwks_doc("ed")
    doc["keys"].append({"kty": "oct", "kid": "hs", "k": b64u(HS_SECRET)})
    jwks = JwksServer(doc, tls=(crt, key)).start()
    try:
        trusted = jwt_policy(jwks=None, jwks_uri=jwks.url, jwks_ca_file=crt)
        untrusted = jwt_policy(jwks=None, jwks_uri=jwks.url)
        routes = [
            {"name": "t", "match": {"path_prefix": "/t"}, "cluster": "echo",
             "policies": [trusted]},
            {"name": "u", "match": {"path_prefix": "/u"}, "cluster": "echo",
             "policies": [untrusted]},
        ]
        gh = gatehouse(routed(echo, routes=routes))
        with client(gh) as c:
            assert c.get("/t", headers=bearer(token("EdDSA"))).status_code == 200
            # A shared secret published in a remote JWKS is never trusted.
            assert_401(c.get("/t", headers=bearer(token("HS256"))))
            # Same URL, but the certificate is not in the system store: no keys, 503.
            assert c.get("/u", headers=bearer(token("EdDSA"))).status_code == 503
        assert jwks.fetch_count() == 1  # the failed handshake never reached the handler
        m = gh.metrics()  # one series per URI, summed over both TLS settings
        assert m.value("gatehouse_jwt_jwks_fetches_total", uri=jwks.url, result="ok") == 1
        assert m.value("gatehouse_jwt_jwks_fetches_total", uri=jwks.url, result="error") >= 1
    finally:
        jwks.stop()


def test_http2_requests_are_authenticated(gatehouse, echo):
    from test_http2 import H2Conn, echo_json
    jwks = JwksServer(jwks_doc("p256")).start()  # the first request pauses for the fetch
    try:
        gh = gatehouse(routed(echo, jwt_policy(jwks=None, jwks_uri=jwks.url, cookie="session")))
        with httpx.Client(http1=False, http2=True, timeout=15.0) as c:
            r = c.get(f"{gh.url}/h2", headers=bearer(token("ES256")))
            assert r.status_code == 200 and r.http_version == "HTTP/2"
            assert upstream_headers(r)["x-jwt-sub"] == ["alice"]
            r = c.get(f"{gh.url}/h2")
            assert_401(r, token_present=False)
        # HTTP/2 splits cookies into crumbs: the token is found in its own crumb.
        conn = H2Conn(gh.port)
        sid = conn.request("GET", "/crumbs", headers=[("cookie", "a=1"),
                                                      ("cookie", f"session={token('ES256')}")])
        resp = conn.response(sid)
        conn.close()
        assert resp["status"] == 200
        assert dict(echo_json(resp)["headers"])["x-jwt-sub"] == "alice"
    finally:
        jwks.stop()


def test_rate_limit_keyed_by_a_verified_claim(gatehouse, echo):
    limit = {"name": "rate_limit", "config": {"key": "claim:org", "missing_key": "deny",
                                              "limits": [{"rate": "2/m"}]}}
    gh = gatehouse(routed(echo, jwt_policy(), limit))
    with client(gh) as c:
        acme = [token("ES256", org="acme", sub=f"user-{i}") for i in range(3)]
        # Different users of one organisation share its budget: the key is the claim.
        assert [c.get("/x", headers=bearer(t)).status_code for t in acme] == [200, 200, 429]
        assert c.get("/x", headers=bearer(token("ES256", org="globex"))).status_code == 200
        # A client-sent header of the same name changes nothing: only verified claims count.
        r = c.get("/x", headers={**bearer(token("ES256", org="acme")), "org": "other"})
        assert r.status_code == 429
        # A token without the claim has no key: denied as configured.
        assert c.get("/x", headers=bearer(token("ES256"))).status_code == 429
