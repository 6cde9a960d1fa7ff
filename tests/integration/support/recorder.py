"""Recording upstream: stores every received byte, answers with scripted raw bytes."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


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
