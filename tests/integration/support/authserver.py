"""Small HTTP servers standing in for an identity provider in the auth policy tests.

  JwksServer           serves a JWKS document (replaceable while running) and counts fetches;
                       answers with chunked framing to exercise the client's chunked decoder.
  IntrospectionServer  an RFC 7662 endpoint: POST token=... with Basic client credentials;
                       answers from a dict of token -> JSON, counts calls, can fail on demand.

Both keep connections alive (HTTP/1.1) and count the connections they accept, so a test can
tell pooled calls from one connection per call.
"""
from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        sock, addr = super().get_request()
        with self.owner.lock:
            self.owner.connections += 1
        return sock, addr


class _Base:
    def __init__(self, handler, tls=None):
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.owner = self
        self.scheme = "http"
        if tls:  # (cert file, key file): serve HTTPS
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.lock = threading.Lock()
        self.connections = 0
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self):
        return self.httpd.server_address[1]

    def start(self):
        self.thread.start()
        return self

    def connection_count(self) -> int:
        with self.lock:
            return self.connections

    def stop(self):
        if hasattr(self, "stopping"):
            self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class _JwksHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server.owner
        if srv.delay:
            srv.stopping.wait(srv.delay)  # lets concurrent requests pile up behind the fetch
        with srv.lock:
            srv.fetches += 1
            body = json.dumps(srv.jwks).encode()
            status = srv.status
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            if part:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")


class JwksServer(_Base):
    def __init__(self, jwks: dict, tls=None):
        super().__init__(_JwksHandler, tls)
        self.jwks = jwks
        self.fetches = 0
        self.status = 200
        self.delay = 0.0
        self.stopping = threading.Event()

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}/.well-known/jwks.json"

    def set(self, jwks: dict):
        with self.lock:
            self.jwks = jwks

    def fetch_count(self) -> int:
        with self.lock:
            return self.fetches


class _IntrospectionHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        srv = self.server.owner
        n = int(self.headers.get("content-length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        auth = self.headers.get("authorization", "")
        if srv.delay:
            srv.stopping.wait(srv.delay)  # lets concurrent requests overlap
        with srv.lock:
            srv.calls += 1
            srv.last_form = form
            # RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined and base64'd.
            creds = (None, None)
            if auth.startswith("Basic "):
                raw = base64.b64decode(auth[6:]).decode()
                user, _, pw = raw.partition(":")
                creds = (urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw))
            if srv.fail_status:
                status, body = srv.fail_status, {"error": "boom"}
            elif creds != (srv.client_id, srv.client_secret):
                status, body = 401, {"error": "invalid_client"}
            else:
                token = (form.get("token") or [""])[0]
                status, body = 200, srv.tokens.get(token, {"active": False})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class IntrospectionServer(_Base):
    def __init__(self, client_id="gatehouse", client_secret="s3cr3t:+/"):
        super().__init__(_IntrospectionHandler)
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: dict[str, dict] = {}
        self.calls = 0
        self.fail_status = 0
        self.last_form = None
        self.delay = 0.0
        self.stopping = threading.Event()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/oauth2/introspect"

    def call_count(self) -> int:
        with self.lock:
            return self.calls
