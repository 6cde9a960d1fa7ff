"""hmac_auth against a real gatehouse: draft-cavage signatures with secrets from the consumer
registry, signed header rules, the clock-skew window, replay rejection, and a signed body
digest that keeps a tampered body away from the upstream (recorder)."""
import httpx

from support import cluster, request_bytes, chunked, simple_config
from support.auth import body_digest, http_date, sign

SECRET = "alice-hmac-secret-0123456789"
CONSUMERS = [
    {"name": "alice", "groups": ["partners"], "metadata": {"tier": "gold"},
     "credentials": {"hmac": [{"key_id": "alice-1", "secret": SECRET}]}},
    {"name": "bob", "credentials": {"hmac": [{"key_id": "bob-1",
                                               "secret": "bob-hmac-secret-0123456789"}]}},
]


def config(upstream, **opts):
    return simple_config(cluster("up", upstream), consumers=CONSUMERS, routes=[
        {"name": "signed", "match": {"path_prefix": "/"}, "cluster": "up",
         "policies": [{"name": "hmac_auth",
                       "config": {"consumer_header": "x-consumer",
                                  "metadata_headers": {"tier": "x-tier"}, **opts}}]}])


def client(gh):
    return httpx.Client(base_url=gh.url, trust_env=False, timeout=15.0)


def signed_get(path="/r", key_id="alice-1", secret=SECRET, date=None, **kw):
    host = "gh.test"
    return sign("GET", path, {"Host": host, "Date": date or http_date()}, key_id, secret, **kw)


def rejections(gh, reason):
    return gh.metrics().get_value("gatehouse_auth_rejections_total", policy="hmac_auth",
                                  reason=reason) or 0


def test_good_signature_reaches_upstream_with_identity(gatehouse, echo):
    gh = gatehouse(config(echo))
    with client(gh) as c:
        r = c.get("/r?x=1", headers=signed_get("/r?x=1"))
        assert r.status_code == 200, r.text
        hdrs = {k: v for k, v in r.json()["headers"]}
        assert hdrs["x-consumer"] == "alice" and hdrs["x-tier"] == "gold"
        for alg in ("hmac-sha384", "hmac-sha512"):
            assert c.get("/r", headers=signed_get(algorithm=alg)).status_code == 200
        # X-Date instead of Date (browsers cannot set Date).
        h = sign("GET", "/r", {"Host": "gh.test", "X-Date": http_date()}, "alice-1", SECRET,
                 signed=("@request-target", "host", "x-date"))
        assert c.get("/r", headers=h).status_code == 200
    assert echo.request_count() == 4


def test_rejections_are_401_with_challenge_and_counted(gatehouse, echo):
    gh = gatehouse(config(echo))
    with client(gh) as c:
        cases = {
            "bad_signature": signed_get(secret="not-the-secret-0123456789"),
            "missing_signed_header": signed_get(signed=("@request-target", "date")),
            "stale_date": signed_get(date=http_date(-600)),
            "unknown_key": signed_get(key_id="mallory-1"),
            "bad_algorithm": {**signed_get(), "Authorization": signed_get()["Authorization"]
                              .replace("hmac-sha256", "hmac-sha1")},
            "missing": {"Host": "gh.test", "Date": http_date()},
            "malformed": {"Authorization": "Signature keyId=alice-1"},
        }
        for reason, headers in cases.items():
            r = c.get("/r", headers=headers)
            assert r.status_code == 401, reason
            assert r.headers["www-authenticate"].startswith('Signature realm="gatehouse"')
            body = r.json()
            assert body["error"] == "invalid or missing signature"  # never says why
            assert body["request_id"]
    m = gh.metrics()
    for reason in cases:
        assert m.value("gatehouse_auth_rejections_total", policy="hmac_auth",
                       reason=reason) >= 1, reason
    assert echo.request_count() == 0


def test_exact_replay_is_rejected(gatehouse, echo):
    gh = gatehouse(config(echo), workers=2)
    h = signed_get("/pay")
    with client(gh) as c:
        assert c.get("/pay", headers=h).status_code == 200
    # New connections, so the replays may land on the other worker: the table is shared.
    for _ in range(3):
        with client(gh) as c:
            assert c.get("/pay", headers=h).status_code == 401
    assert rejections(gh, "replay") == 3
    assert echo.request_count() == 1


def signed_post(body: bytes, digest_of: bytes = None, date_offset=0):
    headers = {"Host": "gh.test", "Date": http_date(date_offset),
               "Digest": body_digest(body if digest_of is None else digest_of)}
    return sign("POST", "/upload", headers, "alice-1", SECRET,
                signed=("@request-target", "host", "date", "digest"))


def test_body_digest_mismatch_never_reaches_upstream(gatehouse, recorder):
    gh = gatehouse(config(recorder))
    with client(gh) as c:
        good = b'{"amount": 10}'
        r = c.post("/upload", content=good, headers=signed_post(good))
        assert r.status_code == 200 and r.text == "recorded"
        tampered = b'{"amount": 99}'
        # Another Date than the good request's, or this would be rejected as its replay.
        r = c.post("/upload", content=tampered,
                   headers=signed_post(tampered, digest_of=good, date_offset=-5))
        assert r.status_code == 401
    assert rejections(gh, "digest_mismatch") == 1
    reqs = recorder.request_list()
    assert len(reqs) == 1 and reqs[0].body == good
    assert b'"amount": 99' not in recorder.all_bytes()  # ids may contain "99" by chance


def test_chunked_body_with_expect_continue_is_buffered_and_checked(gatehouse, recorder):
    gh = gatehouse(config(recorder))
    body = b"part-one|" * 1000 + b"end"
    for digest_body, want, offset in ((body, 200, 0), (b"other", 401, -5)):
        h = signed_post(body, digest_of=digest_body, date_offset=offset)
        with gh.conn() as conn:
            hdrs = [(k, v) for k, v in h.items() if k != "Host"]
            hdrs += [("Transfer-Encoding", "chunked"), ("Expect", "100-continue")]
            conn.send(request_bytes("POST", "/upload", hdrs, host="gh.test"))
            interim = conn.read_response("POST", skip_interim=False)
            assert interim.status == 100
            conn.send(chunked(body[:4000], body[4000:]))
            r = conn.read_response("POST")
            assert r.status == want
    reqs = recorder.request_list()
    assert len(reqs) == 1
    assert reqs[0].body == body
    assert reqs[0].header("content-length") == str(len(body))


def test_required_digest_and_body_limit(gatehouse, recorder):
    gh = gatehouse(config(recorder, body_digest="required", max_body_bytes="1KiB"))
    with client(gh) as c:
        # A body without a signed Digest is refused.
        h = sign("POST", "/upload", {"Host": "gh.test", "Date": http_date()}, "alice-1", SECRET)
        assert c.post("/upload", content=b"x", headers=h).status_code == 401
        big = b"y" * 2048
        assert c.post("/upload", content=big, headers=signed_post(big)).status_code == 413
        # No body, no digest needed.
        assert c.get("/upload", headers=signed_get("/upload")).status_code == 200
    assert len(recorder.request_list()) == 1


def test_body_digest_over_http2(gatehouse, recorder):
    # The buffered body is protocol-neutral: h2c (prior knowledge) DATA frames are checked too.
    gh = gatehouse(config(recorder, required_headers=["@request-target", "date", "digest"]))
    signed = ("@request-target", "date", "digest")
    body = b"h2-payload|" * 500
    with httpx.Client(http1=False, http2=True, base_url=gh.url, trust_env=False,
                      timeout=15.0) as c:
        for digest_of, want, offset in ((body, 200, 0), (b"other", 401, -5)):
            h = sign("POST", "/h2", {"Date": http_date(offset), "Digest": body_digest(digest_of)},
                     "alice-1", SECRET, signed=signed)
            r = c.post("/h2", content=body, headers=h)
            assert r.http_version == "HTTP/2"
            assert r.status_code == want
    reqs = recorder.request_list()
    assert len(reqs) == 1 and reqs[0].body == body
    assert reqs[0].header("content-length") == str(len(body))


def test_buffered_body_reaches_an_h2c_upstream(gatehouse, echo):
    # The checked body goes to an HTTP/2 upstream too (a second gatehouse speaking h2c).
    import hashlib
    b = gatehouse(simple_config(cluster("up", echo)), name="b")
    a = gatehouse(simple_config(
        {"name": "h2c", "protocol": "h2c", "endpoints": [f"127.0.0.1:{b.port}"]},
        consumers=CONSUMERS, routes=[
            {"name": "signed", "match": {"path_prefix": "/"}, "cluster": "h2c",
             "policies": [{"name": "hmac_auth"}]}]), name="a")
    body = b"to-h2|" * 3000
    with client(a) as c:
        r = c.post("/upload", content=body, headers=signed_post(body))
        assert r.status_code == 200, r.text
        seen = r.json()
        assert seen["body_length"] == len(body)
        assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()
        r = c.post("/upload", content=body,
                   headers=signed_post(body, digest_of=b"x", date_offset=-5))
        assert r.status_code == 401
    assert echo.request_count() == 1
