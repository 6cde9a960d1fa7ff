"""Raw TCP upstreams for the TCP-listener tests (test_l4_tcp.py), each a listening socket on
127.0.0.1 with an ephemeral port and one thread per connection; stopped by stop().

  TcpServer(handler) - calls handler(conn) for each accepted connection (then closes it).
  read_until_closed  - what a client reads until the peer closes (FIN or RST).
  echo_handler       - echoes every byte until EOF, then closes (FIN after the last byte).
  reply_after_eof(n) - reads until the client's FIN, then sends n bytes derived from what it
                       read (sha256-seeded blocks) and closes: proves half-close.
  BulkSender(total)  - sends `total` bytes as fast as the socket takes them, counting them.
"""
from __future__ import annotations

import hashlib
import socket
import threading


def pattern(seed: bytes, n: int) -> bytes:
    """n bytes derived from seed (repeated SHA-256 blocks)."""
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    while len(out) < n:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:n])


def recv_all(conn: socket.socket) -> bytes:
    data = bytearray()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk


def read_until_closed(conn: socket.socket) -> bytes:
    """What arrives until the peer closes, by FIN or by RST (a refusal may be either)."""
    data = bytearray()
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return bytes(data)


def echo_handler(conn: socket.socket):
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return
        conn.sendall(chunk)


def reply_after_eof(n: int):
    def handle(conn: socket.socket):
        got = recv_all(conn)
        conn.sendall(pattern(got, n))
    return handle


class TcpServer:
    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class BulkSender:
    """Handler that sends `total` bytes and records how many the kernel took so far."""

    def __init__(self, total: int, chunk=1 << 20):
        self.total = total
        self.chunk = b"x" * chunk
        self.sent = 0
        self.done = threading.Event()

    def __call__(self, conn: socket.socket):
        left = self.total
        while left > 0:
            n = conn.send(self.chunk[:min(left, len(self.chunk))])
            left -= n
            self.sent += n
        self.done.set()
