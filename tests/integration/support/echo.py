"""Echo upstream: a Python HTTP/1.1 keep-alive server answering JSON about each request."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .common import gen_blocks


class EchoHandler(BaseHTTPRequestHandler):
    """Answers JSON {upstream, method, path, headers, body_length, body_sha256, trailers, conn}.

    Request headers that change the answer:
      x-echo-status: N          status code
      x-echo-delay: SECONDS     wait before answering (cut short when the server stops)
      x-echo-wait: NAME         wait until the test calls server.release(NAME) (max 30 s)
      x-echo-body-size: N       answer N bytes of generated data (gen_blocks) instead of JSON
      x-echo-chunked: 1         answer with chunked framing
      x-echo-trailer: K: V      send trailer K: V (implies chunked)
      x-echo-close: 1           send connection: close and close after the response
      x-echo-header: K: V       add a response header (repeatable)
      x-echo-expect: N          answer Expect: 100-continue with final status N instead of 100
      x-echo-no-length: 1       no content-length: the body ends at connection close
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are separate writes: no 40 ms stalls
    timeout = 30  # an idle keep-alive connection from the gateway is dropped after this

    def log_message(self, *a):  # keep pytest output clean
        pass

    def setup(self):
        super().setup()
        self.conn_id = self.server.new_connection()

    def handle_expect_100(self):
        want = self.headers.get("x-echo-expect")
        if want:
            self.server.record(self, 0, "", [], expect_refused=True)
            self.send_response_only(int(want))
            self.send_header("content-length", "0")
            self.end_headers()
            return False
        return super().handle_expect_100()

    def _read_body(self):
        h = hashlib.sha256()
        n = 0
        trailers = []
        te = self.headers.get("transfer-encoding", "")
        if te.lower() == "chunked":
            for _ in range(1 << 22):
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, 65536))
                    if not b:
                        raise ConnectionError("eof in chunk")
                    h.update(b)
                    n += len(b)
                    left -= len(b)
                self.rfile.readline(8)
            for _ in range(1000):
                line = self.rfile.readline(8192)
                if line in (b"\r\n", b"\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                trailers.append([k.strip().lower(), v.strip()])
        else:
            left = int(self.headers.get("content-length") or 0)
            while left:
                b = self.rfile.read(min(left, 65536))
                if not b:
                    raise ConnectionError("eof in body")
                h.update(b)
                n += len(b)
                left -= len(b)
        return n, h.hexdigest(), trailers

    def _handle(self):
        srv = self.server
        try:
            n, digest, trailers = self._read_body()
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        srv.record(self, n, digest, trailers)
        hdr = self.headers
        if hdr.get("x-echo-wait"):
            srv.gate(hdr["x-echo-wait"]).wait(30)
        if hdr.get("x-echo-delay"):
            srv.stopping.wait(float(hdr["x-echo-delay"]))
        status = int(hdr.get("x-echo-status", "200"))
        trailer = hdr.get("x-echo-trailer")
        use_chunked = bool(hdr.get("x-echo-chunked")) or bool(trailer)
        no_length = bool(hdr.get("x-echo-no-length"))
        close = bool(hdr.get("x-echo-close")) or no_length
        if hdr.get("x-echo-body-size"):
            size = int(hdr["x-echo-body-size"])
            blocks = gen_blocks(size)
            ctype = "application/octet-stream"
        else:
            payload = json.dumps({
                "upstream": srv.name,
                "method": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": [[k.lower(), v] for k, v in hdr.items()],
                "body_length": n,
                "body_sha256": digest,
                "trailers": trailers,
                "conn": self.conn_id,
            }).encode()
            size = len(payload)
            blocks = iter([payload])
            ctype = "application/json"
        no_body = self.command == "HEAD" or status in (204, 304) or status < 200
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("x-upstream", srv.name)
        for v in hdr.get_all("x-echo-header") or []:
            k, _, val = v.partition(":")
            self.send_header(k.strip(), val.strip())
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        if use_chunked and not no_body:
            self.send_header("transfer-encoding", "chunked")
            if trailer:
                self.send_header("trailer", trailer.partition(":")[0].strip())
        elif not no_length and status not in (204, 304) and status >= 200:
            self.send_header("content-length", str(size))
        self.end_headers()
        if no_body:
            self.wfile.flush()
            return
        for b in blocks:
            if use_chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            else:
                self.wfile.write(b)
        if use_chunked:
            self.wfile.write(b"0\r\n" + (trailer.encode() + b"\r\n" if trailer else b"") + b"\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), EchoHandler)
        self.name = name
        self.port = self.server_address[1]
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.connections = 0
        self.stopping = threading.Event()
        self._gates: dict[str, threading.Event] = {}
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"echo-{name}", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        for g in list(self._gates.values()):
            g.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)

    def handle_error(self, request, client_address):
        # A gateway that cuts a connection mid-response is often the point of a test.
        import sys
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError,
                                              TimeoutError)):
            super().handle_error(request, client_address)

    def new_connection(self) -> int:
        with self.lock:
            self.connections += 1
            return self.connections

    def record(self, handler, n, digest, trailers, expect_refused=False):
        with self.lock:
            self.requests.append({
                "method": handler.command, "path": handler.path, "conn": handler.conn_id,
                "headers": [(k.lower(), v) for k, v in handler.headers.items()],
                "body_length": n, "body_sha256": digest, "trailers": trailers,
                "expect_refused": expect_refused,
            })

    def gate(self, name) -> threading.Event:
        with self.lock:
            return self._gates.setdefault(name, threading.Event())

    def release(self, name):
        self.gate(name).set()

    def request_count(self) -> int:
        with self.lock:
            return len(self.requests)

    @property
    def endpoint(self) -> str:
        return f"{self.server_address[0]}:{self.port}"


class BackgroundHttpServer(ThreadingHTTPServer):
    """A test upstream with its own handler, serving from a daemon thread as soon as it is
    made; `endpoint` is its host:port for a cluster, `stop()` is idempotent."""
    daemon_threads = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.server_address[1]}"

    def stop(self):
        if self.thread.is_alive():
            self.shutdown()
            self.server_close()
            self.thread.join(10)
