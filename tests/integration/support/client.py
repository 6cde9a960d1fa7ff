"""Client side: a raw socket connection with a strict-enough HTTP/1.1 response reader."""
from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field

from .common import IO_TIMEOUT


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
