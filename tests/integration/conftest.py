"""Fixtures and helpers for the Gatehouse integration tests.

Every test gets its own gatehouse process, temp dir and upstreams, all on 127.0.0.1 with
ephemeral ports. Nothing waits with a bare sleep: helpers poll for a condition with a generous
deadline (the suite must pass on a loaded 2-core machine), and every loop is bounded in count
and time. Every process and thread started here is stopped in fixture teardown.

Upstreams:
  EchoServer  - Python ThreadingHTTPServer (HTTP/1.1, keep-alive). Answers JSON describing the
                request; behaviours are driven by x-echo-* request headers (see EchoHandler).
  Recorder    - raw TCP server that stores every byte it receives and replies with scripted raw
                bytes; proves what did (not) reach the upstream and sends malformed responses.
Clients:
  RawConn     - a socket with a read buffer and a strict-enough HTTP/1.1 response reader.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATEHOUSE_BIN = os.environ.get("GATEHOUSE_BIN") or str(REPO / "build" / "release" / "gatehouse")

# Generous deadlines: the machine is shared and may be an ASan build.
START_TIMEOUT = 20.0
IO_TIMEOUT = 15.0


# ------------------------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind port 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout=IO_TIMEOUT, interval=0.02, message="condition"):
    """Polls cond() until it returns a truthy value; returns it. Bounded in time and count."""
    deadline = time.monotonic() + timeout
    max_polls = int(timeout / interval) + 10
    last_exc = None
    for _ in range(max_polls):
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported below if the deadline passes
            last_exc = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM, timeout=20.0) -> int | None:
    """Stops one process by PID: sig, wait, then SIGKILL. Returns the exit code."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10)
    except ProcessLookupError:
        return proc.wait(timeout=10)


def is_sanitized_binary(path=GATEHOUSE_BIN) -> bool:
    """True for ASan/UBSan builds (their RSS and speed are not comparable)."""
    return _sanitized_cache.setdefault(path, _probe_sanitized(path))


_sanitized_cache: dict[str, bool] = {}


def _probe_sanitized(path) -> bool:
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                if b"AddressSanitizer" in block or b"__asan_init" in block:
                    return True
    except OSError:
        pass
    return False


# Deterministic generated data: every 64 KiB block starts with its index, so reordered or
# dropped blocks change the hash. Memory stays at one block whatever the total size.
_BLOCK = 65536
_BASE = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(_BLOCK // 32))


def gen_blocks(total: int):
    """Yields `total` bytes of generated data in blocks of at most 64 KiB."""
    k = 0
    sent = 0
    while sent < total:
        n = min(_BLOCK, total - sent)
        block = (k.to_bytes(8, "big") * 2 + _BASE[16:])[:n]
        yield block
        sent += n
        k += 1


def gen_sha256(total: int) -> str:
    h = hashlib.sha256()
    for b in gen_blocks(total):
        h.update(b)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------
# raw client connection


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list  # [(lowercased name, value)] in order
    body: bytes = b""
    trailers: list = field(default_factory=list)
    chunked: bool = False
    raw_head: bytes = b""

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        return json.loads(self.body)


class ConnectionClosed(AssertionError):
    pass


class RawConn:
    """A client socket with a read buffer. Every read has a deadline (IO_TIMEOUT by default)."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self, deadline) -> bool:
        """Reads more bytes; False on EOF. Raises socket.timeout past the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_until(self, marker: bytes, timeout=None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while marker not in self.buf:
            if not self._fill(deadline):
                raise ConnectionClosed(f"connection closed before {marker!r}; got {self.buf[:200]!r}")
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n: int, timeout=None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ConnectionClosed(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_close(self, timeout=None, limit=1 << 30) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) <= limit and self._fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def wait_closed(self, timeout=None) -> bool:
        """True if the peer closes within the timeout (discarding anything else it sends)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            for _ in range(100000):
                if not self._fill(deadline):
                    return True
                self.buf = b""
        except (socket.timeout, TimeoutError):
            return False
        return False

    def read_response(self, method="GET", timeout=None, skip_interim=True) -> Response:
        """Reads one response. 1xx responses are skipped unless skip_interim is False."""
        for _ in range(10):
            r = self._read_one(method, timeout)
            if skip_interim and 100 <= r.status < 200 and r.status != 101:
                continue
            return r
        raise AssertionError("too many interim responses")

    def _read_one(self, method, timeout) -> Response:
        head = self.read_until(b"\r\n\r\n", timeout)
        lines = head[:-4].split(b"\r\n")
        m = re.match(rb"^(HTTP/1\.[01]) (\d{3}) ?(.*)$", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        headers = []
        for ln in lines[1:]:
            name, sep, value = ln.partition(b":")
            assert sep and name and name == name.strip(), f"bad header line {ln!r}"
            headers.append((name.decode().lower(), value.strip().decode("latin-1")))
        r = Response(int(m.group(2)), m.group(3).decode("latin-1"), m.group(1).decode(), headers,
                     raw_head=head)
        te = r.header("transfer-encoding")
        cl = r.header_all("content-length")
        if method == "HEAD" or 100 <= r.status < 200 or r.status in (204, 304):
            return r
        if te is not None:
            assert te.lower() == "chunked", f"unexpected transfer-encoding {te!r}"
            assert not cl, "response has both content-length and transfer-encoding"
            r.chunked = True
            r.body, r.trailers = self._read_chunked(timeout)
        elif cl:
            assert len(set(cl)) == 1, f"conflicting content-length {cl}"
            r.body = self.read_exact(int(cl[0]), timeout)
        else:
            r.body = self.read_to_close(timeout)
        return r

    def _read_chunked(self, timeout):
        body = []
        for _ in range(1 << 20):
            line = self.read_until(b"\r\n", timeout)[:-2]
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            body.append(self.read_exact(size, timeout))
            assert self.read_exact(2, timeout) == b"\r\n", "chunk not followed by CRLF"
        trailers = []
        for _ in range(1000):
            line = self.read_until(b"\r\n", timeout)[:-2]
            if not line:
                break
            name, _, value = line.partition(b":")
            trailers.append((name.decode().lower(), value.strip().decode("latin-1")))
        return b"".join(body), trailers


def request_bytes(method="GET", path="/", headers=None, body=b"", host="gh.test",
                  version="HTTP/1.1") -> bytes:
    """A request in bytes. headers: list of (name, value); a content-length is added for a body
    unless headers already frame it."""
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    out = f"{method} {path} {version}\r\n"
    if host is not None and "host" not in names:
        out += f"Host: {host}\r\n"
    for k, v in headers:
        out += f"{k}: {v}\r\n"
    if body and "content-length" not in names and "transfer-encoding" not in names:
        out += f"Content-Length: {len(body)}\r\n"
    return out.encode("latin-1") + b"\r\n" + body


def chunked(*parts: bytes, trailers=()) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
    out += b"0\r\n"
    for k, v in trailers:
        out += f"{k}: {v}\r\n".encode()
    return out + b"\r\n"


# ------------------------------------------------------------------------------------------
# echo upstream


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

    def __init__(self, name: str):
        super().__init__(("127.0.0.1", 0), EchoHandler)
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
        return f"127.0.0.1:{self.port}"


# ------------------------------------------------------------------------------------------
# recording upstream


@dataclass
class Reply:
    """A scripted upstream answer. `data` is sent when the request head has arrived
    (early=True) or when the request (head and body) is complete; then the connection is
    kept, or closed (write side shut, input drained) if close=True. data=None sends nothing."""
    data: bytes | None
    close: bool = False
    early: bool = False
    # With close: send the FIN in the same segment as the data (TCP_CORK, then shutdown), so
    # the gateway sees data and end-of-stream in one readiness event.
    fin_with_data: bool = False


OK_REPLY = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 8\r\n\r\nrecorded"


@dataclass
class RecordedRequest:
    head: bytes
    body: bytes
    conn: int

    @property
    def request_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    def header(self, name):
        for ln in self.head.split(b"\r\n")[1:]:
            k, _, v = ln.partition(b":")
            if k.strip().lower() == name.lower().encode():
                return v.strip().decode("latin-1")
        return None


class RecConn:
    def __init__(self, index):
        self.index = index
        self.data = bytearray()
        self.closed_by_peer = False


class Recorder:
    """Raw TCP upstream: stores every received byte per connection and answers each request with
    the next scripted Reply (OK_REPLY when the script is empty)."""

    def __init__(self, script=None, default=OK_REPLY):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.script = list(script or [])
        self.default = default
        self.conns: list[RecConn] = []
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True, name="recorder")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self):
        self._acceptor.start()
        return self

    def stop(self):
        self.stopping.set()
        self._acceptor.join(timeout=10)
        self.lsock.close()
        for s in list(self._socks):
            try:
                s.close()
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=10)

    def total_bytes(self) -> int:
        with self.lock:
            return sum(len(c.data) for c in self.conns)

    def all_bytes(self) -> bytes:
        with self.lock:
            return b"".join(bytes(c.data) for c in self.conns)

    def connection_count(self) -> int:
        with self.lock:
            return len(self.conns)

    def request_list(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self.requests)

    def _next_reply(self) -> Reply:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        return Reply(self.default)

    def _accept_loop(self):
        for _ in range(10 ** 9):
            if self.stopping.is_set():
                return
            try:
                s, _ = self.lsock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            with self.lock:
                c = RecConn(len(self.conns))
                self.conns.append(c)
                self._socks.append(s)
            t = threading.Thread(target=self._serve, args=(s, c), daemon=True)
            self.threads.append(t)
            t.start()

    def _recv(self, s, c) -> bytes | None:
        """One read: bytes, b"" at EOF, None on timeout (checked against stopping)."""
        try:
            b = s.recv(65536)
        except (socket.timeout, TimeoutError):
            return None
        except OSError:
            return b""
        with self.lock:
            c.data += b
        return b

    def _serve(self, s, c):
        s.settimeout(0.1)
        buf = b""
        deadline = time.monotonic() + 60
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                # Parse as many complete requests as the buffer holds.
                progressed = True
                while progressed:
                    progressed = False
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buf[:end + 4]
                    reply = None
                    if not getattr(c, "early_sent", False):
                        reply = self._peek_early()
                        if reply is not None:
                            c.early_sent = True
                            if self._send_reply(s, c, reply):
                                return
                    blen = _body_length(head, buf[end + 4:])
                    if blen is None:
                        break  # body incomplete
                    body = buf[end + 4:end + 4 + blen]
                    buf = buf[end + 4 + blen:]
                    with self.lock:
                        self.requests.append(RecordedRequest(head, _dechunk_if(head, body), c.index))
                    progressed = True
                    if getattr(c, "early_sent", False):
                        c.early_sent = False
                        continue
                    if self._send_reply(s, c, self._next_reply()):
                        return
                b = self._recv(s, c)
                if b is None:
                    continue
                if not b:
                    c.closed_by_peer = True
                    return
                buf += b
        finally:
            try:
                s.close()
            except OSError:
                pass

    def _peek_early(self):
        with self.lock:
            if self.script and self.script[0].early:
                return self.script.pop(0)
        return None

    def _send_reply(self, s, c, reply: Reply) -> bool:
        """Sends a reply; returns True when the connection is finished."""
        try:
            if reply.fin_with_data:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            if reply.data:
                s.sendall(reply.data)
            if reply.close:
                s.shutdown(socket.SHUT_WR)
                # Drain so that our close does not turn into a RST that destroys the reply.
                end = time.monotonic() + 10
                while time.monotonic() < end and not self.stopping.is_set():
                    b = self._recv(s, c)
                    if b == b"":
                        break
                return True
        except OSError:
            return True
        return False


def _body_length(head: bytes, rest: bytes):
    """Length of the raw body after `head` if it is complete in `rest`, else None."""
    fields = {}
    for ln in head.split(b"\r\n")[1:]:
        k, _, v = ln.partition(b":")
        fields[k.strip().lower()] = v.strip()
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        i = 0
        for _ in range(1 << 20):
            j = rest.find(b"\r\n", i)
            if j < 0:
                return None
            try:
                size = int(rest[i:j].split(b";")[0], 16)
            except ValueError:
                return len(rest)  # garbage: take it all
            if size == 0:
                k = rest.find(b"\r\n\r\n", j)
                if rest[j:j + 4] == b"\r\n\r\n":
                    return j + 4
                return None if k < 0 else k + 4
            i = j + 2 + size + 2
            if i > len(rest):
                return None
        return None
    n = int(fields.get(b"content-length", b"0") or 0)
    return n if len(rest) >= n else None


def _dechunk_if(head: bytes, body: bytes) -> bytes:
    if b"transfer-encoding: chunked" not in head.lower():
        return body
    out, i = [], 0
    for _ in range(1 << 20):
        j = body.find(b"\r\n", i)
        if j < 0:
            break
        try:
            size = int(body[i:j].split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(body[j + 2:j + 2 + size])
        i = j + 2 + size + 2
    return b"".join(out)


# ------------------------------------------------------------------------------------------
# gatehouse launcher


def parse_metrics(text: str) -> dict:
    """Prometheus text -> {(name, frozenset(labels.items())): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, f"bad metrics line {line!r}"
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


class Metrics(dict):
    def get_value(self, name, **labels):
        return self.get((name, frozenset(labels.items())))

    def value(self, name, **labels) -> float:
        v = self.get_value(name, **labels)
        assert v is not None, f"metric {name}{labels} missing"
        return v

    def total(self, name) -> float:
        return sum(v for (n, _), v in self.items() if n == name)


def http_get(port, path, timeout=5.0, host="127.0.0.1"):
    """One short-lived GET; returns (status, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def cluster(name, *upstreams, **extra):
    return {"name": name, "endpoints": [u.endpoint if hasattr(u, "endpoint") else u
                                         for u in upstreams], **extra}


class Gatehouse:
    """One gatehouse process running `run -c <tmp>/gatehouse.yaml --workers N`.

    The config is a dict (written as JSON, which is YAML); the launcher fills in a listener on
    127.0.0.1, the admin API, an access log file in tmp_path and `watch: false` unless given.
    """

    def __init__(self, tmp_path: Path, config: dict, workers=2, name="gh"):
        self.dir = tmp_path / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "gatehouse.yaml"
        self.access_log_path = self.dir / "access.log"
        self.stderr_path = self.dir / "stderr.log"
        self.stdout_path = self.dir / "stdout.log"
        self.workers = workers
        self.user_config = config
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.admin_port = 0
        self.ports: dict[str, int] = {}

    # -- config
    def extra_port(self, name: str) -> int:
        """A stable free port for `"port": "@name"` in listeners (any name but "main")."""
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]

    def full_config(self, config: dict) -> dict:
        c = json.loads(json.dumps(config))  # deep copy
        c.setdefault("watch", False)
        c.setdefault("listeners", [{"name": "main", "address": "127.0.0.1", "port": "@main"}])
        for lis in c["listeners"]:
            p = lis.get("port")
            if isinstance(p, str) and p.startswith("@"):
                lis["port"] = self.port if p == "@main" else self.extra_port(p[1:])
        admin = c.setdefault("admin", {})
        admin.setdefault("address", "127.0.0.1")
        admin.setdefault("port", self.admin_port)
        al = c.setdefault("access_log", {})
        al.setdefault("path", str(self.access_log_path))
        return c

    def write_config(self, config: dict | None = None, raw: str | None = None):
        if config is not None:
            self.user_config = config
        text = raw if raw is not None else json.dumps(self.full_config(self.user_config), indent=2)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    # -- lifecycle
    def start(self, attempts=3):
        for attempt in range(attempts):
            self.port = free_port()
            self.admin_port = free_port()
            self.ports = {}
            self.write_config()
            self._spawn(["run", "-c", str(self.config_path), "--workers", str(self.workers)])
            try:
                self.wait_ready()
                return self
            except AssertionError:
                err = self.stderr()
                stop_process(self.proc, signal.SIGKILL)
                # A port taken between free_port() and bind: try other ports.
                if "in use" in err.lower() and attempt + 1 < attempts:
                    continue
                raise AssertionError(f"gatehouse did not become ready; stderr:\n{err[-4000:]}")
        raise AssertionError("unreachable")

    def start_demo(self, attempts=3):
        for attempt in range(attempts):
            self.port = free_port()
            self.admin_port = free_port()
            self._spawn(["demo", "--port", str(self.port), "--admin-port", str(self.admin_port),
                         "--workers", str(self.workers)])
            try:
                self.wait_ready()
                return self
            except AssertionError:
                err = self.stderr()
                stop_process(self.proc, signal.SIGKILL)
                if "in use" in err.lower() and attempt + 1 < attempts:
                    continue
                raise AssertionError(f"gatehouse demo did not become ready; stderr:\n{err[-4000:]}")
        raise AssertionError("unreachable")

    def _spawn(self, args):
        self.stderr_f = open(self.stderr_path, "ab")
        self.stdout_f = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen([GATEHOUSE_BIN, *args], stdin=subprocess.DEVNULL,
                                     stdout=self.stdout_f, stderr=self.stderr_f)

    def wait_ready(self, timeout=START_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"gatehouse exited with {self.proc.returncode}")
            return http_get(self.admin_port, "/readyz", timeout=1.0)[0] == 200
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.02) + 10):
            if self.proc.poll() is not None:
                raise AssertionError(f"gatehouse exited with {self.proc.returncode}")
            try:
                if ready():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("gatehouse /readyz did not answer 200")
            time.sleep(0.02)
        # The listener sockets are bound before the admin API opens; check one connect anyway,
        # and wait until a worker has accepted and closed it, so tests start from a quiet state.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5):
            pass

        def quiet():
            m = self.metrics()
            return (m.value("gatehouse_connections_accepted_total") >= 1
                    and m.value("gatehouse_connections_active") == 0)
        wait_until(quiet, timeout, message="the readiness probe connection to be accepted")

    def stop(self, sig=signal.SIGTERM, timeout=20.0) -> int | None:
        if self.proc is None:
            return None
        rc = stop_process(self.proc, sig, timeout)
        for f in (self.stderr_f, self.stdout_f):
            f.close()
        return rc

    def signal(self, sig):
        self.proc.send_signal(sig)

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    # -- observation
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def metrics(self) -> Metrics:
        status, body = http_get(self.admin_port, "/metrics")
        assert status == 200, f"/metrics answered {status}"
        return Metrics(parse_metrics(body.decode()))

    def reload_counts(self) -> tuple[float, float]:
        m = self.metrics()
        return (m.value("gatehouse_config_reloads_total", result="success"),
                m.value("gatehouse_config_reloads_total", result="failure"))

    def reload(self, timeout=IO_TIMEOUT) -> str:
        """SIGHUP, then waits until a reload was counted; returns 'success' or 'failure'."""
        ok0, bad0 = self.reload_counts()
        self.signal(signal.SIGHUP)
        ok, bad = wait_until(lambda: (lambda c: c if c != (ok0, bad0) else None)(self.reload_counts()),
                             timeout, message="gatehouse_config_reloads_total to increase")
        return "success" if ok > ok0 else "failure"

    def access_log(self) -> list[dict]:
        try:
            text = self.access_log_path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(ln) for ln in text.splitlines() if ln.strip()]

    def wait_log(self, pred, timeout=IO_TIMEOUT) -> dict:
        """Waits until an access log line satisfies pred (the log is flushed every ~200 ms)."""
        return wait_until(lambda: next((e for e in self.access_log() if pred(e)), None), timeout,
                          message="access log line")

    def vm_hwm_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def conn(self, timeout=IO_TIMEOUT) -> RawConn:
        return RawConn(self.port, timeout=timeout)


# ------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def echo_factory():
    servers = []

    def make(name="echo"):
        s = EchoServer(name).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def echo(echo_factory):
    return echo_factory("echo-a")


@pytest.fixture
def echo2(echo_factory):
    return echo_factory("echo-b")


@pytest.fixture
def recorder_factory():
    recs = []

    def make(script=None, default=OK_REPLY):
        r = Recorder(script, default).start()
        recs.append(r)
        return r
    yield make
    for r in recs:
        r.stop()


@pytest.fixture
def recorder(recorder_factory):
    return recorder_factory()


@pytest.fixture
def gatehouse(tmp_path):
    """Factory: gatehouse(config_dict, workers=2) -> a started Gatehouse; stopped at teardown."""
    started = []

    def make(config, workers=2, name=None):
        g = Gatehouse(tmp_path, config, workers=workers, name=name or f"gh{len(started)}")
        started.append(g)
        return g.start()
    yield make
    for g in started:
        rc = g.stop()
        err = g.stderr()
        # Shown by pytest only when the test fails.
        print(f"--- gatehouse {g.dir.name} exit={rc} stderr (tail) ---\n{err[-3000:]}")
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in err, f"sanitizer report in gatehouse stderr:\n{err[-6000:]}"
        # SIGTERM must drain and exit 0; a crash, a sanitizer abort or a hang (SIGKILL) fails.
        assert rc == 0, f"gatehouse exited with {rc}; stderr:\n{err[-3000:]}"


def simple_config(*clusters_, routes=None, **extra):
    """Config with the given clusters and routes (default: everything to the first cluster)."""
    c = {"clusters": list(clusters_)}
    if routes is None:
        routes = [{"name": "all", "match": {"path_prefix": "/"}, "cluster": clusters_[0]["name"]}]
    c["routes"] = routes
    c.update(extra)
    return c
