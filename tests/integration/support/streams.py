"""Long-lived stream peers for the stream tests: a WebSocket echo upstream and a client pool
(python3-websockets, asyncio on a background thread), and an SSE upstream that ticks."""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import websockets

from .common import IO_TIMEOUT


class LoopThread:
    """An asyncio loop on a daemon thread; run(coro) waits for a result from the caller's thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=IO_TIMEOUT * 4):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(IO_TIMEOUT)


class WsEchoServer:
    """WebSocket upstream that echoes every message; no keepalive pings (they would count as
    traffic for the idle timeout under test)."""

    def __init__(self):
        self.handshakes = 0  # opening requests received (before any is accepted or refused)
        self.lt = LoopThread()
        self.server = self.lt.run(self._start())
        self.port = self.server.sockets[0].getsockname()[1]

    async def _start(self):
        async def echo(ws, path=None):
            try:
                async for m in ws:
                    await ws.send(m)
            except websockets.ConnectionClosed:
                pass
        async def count(path, headers):
            self.handshakes += 1
            return None  # go on with the handshake
        return await websockets.serve(echo, "127.0.0.1", 0, ping_interval=None,
                                      process_request=count)

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def close(self):
        async def stop():
            self.server.close()
            await self.server.wait_closed()
        try:
            self.lt.run(stop(), timeout=IO_TIMEOUT)
        finally:
            self.lt.close()


class WsClients:
    """WebSocket clients driven from the test thread."""

    def __init__(self):
        self.lt = LoopThread()
        self.conns = []

    def open(self, url, extra_headers=None):
        async def connect():
            return await websockets.connect(url, ping_interval=None, extra_headers=extra_headers,
                                            open_timeout=IO_TIMEOUT * 2, close_timeout=1)
        ws = self.lt.run(connect())
        self.conns.append(ws)
        return ws

    def echo(self, ws, text):
        async def go():
            await ws.send(text)
            return await asyncio.wait_for(ws.recv(), IO_TIMEOUT * 2)
        return self.lt.run(go())

    def wait_closed(self, ws, timeout):
        """Seconds until the connection closed (it must close within `timeout`)."""
        async def go():
            t0 = time.monotonic()
            await asyncio.wait_for(ws.wait_closed(), timeout)
            return time.monotonic() - t0
        return self.lt.run(go(), timeout=timeout + IO_TIMEOUT)

    def close_one(self, ws):
        async def go():
            await ws.close()
        self.lt.run(go())

    def close(self):
        async def close_all():
            for ws in self.conns:
                try:
                    await ws.close()
                except Exception:  # noqa: BLE001 - best effort at teardown
                    pass
        try:
            self.lt.run(close_all(), timeout=IO_TIMEOUT * 2)
        finally:
            self.lt.close()


class ThreadedUpstream:
    """A raw HTTP/1.1 upstream on 127.0.0.1: one thread per connection reads the request head,
    then `respond(conn)` writes whatever the test needs. Subclasses implement `respond`."""

    def __init__(self, backlog=256, io_timeout=IO_TIMEOUT * 4):
        self.io_timeout = io_timeout
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            conn.settimeout(self.io_timeout)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    d = conn.recv(4096)
                    if not d:
                        return
                    data += d
                self.respond(conn)
            except OSError:
                return

    def respond(self, conn):
        raise NotImplementedError

    def close(self):
        self.stop.set()
        self.sock.close()


class SseTicker(ThreadedUpstream):
    """SSE upstream: every connection gets `data: tick-N` events every `interval` seconds
    (chunked), until it closes. `silent_after` stops the events (the connection stays open)."""

    def __init__(self, interval=0.5, silent_after=None):
        self.interval = interval
        self.silent_after = silent_after
        super().__init__()

    def respond(self, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        i = 0
        while not self.stop.is_set():
            if self.silent_after is None or i < self.silent_after:
                ev = b"data: tick-%d\n\n" % i
                conn.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
                i += 1
            if self.stop.wait(self.interval):
                return


class SseClient:
    """A raw HTTP/1.1 SSE client on a socket: reads the head, then `data:` lines."""

    def __init__(self, port, path="/events"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT * 2)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n"
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(4096)
            assert d, "connection closed before the response head"
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])

    def next_event(self):
        """The next `data:` value; raises ConnectionError if the stream ended or was reset."""
        while True:
            i = self.buf.find(b"data: ")
            j = self.buf.find(b"\n", i) if i >= 0 else -1
            if i >= 0 and j >= 0:
                value = self.buf[i + 6:j].decode()
                self.buf = self.buf[j + 1:]
                return value
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("SSE stream closed")
            self.buf += d

    def drain_buffered(self):
        """Drops what is queued so that next_event() returns a fresh event."""
        self.sock.setblocking(False)
        try:
            while True:
                d = self.sock.recv(1 << 20)
                if not d:
                    raise ConnectionError("SSE stream closed")
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
            self.sock.settimeout(IO_TIMEOUT * 2)
        self.buf = b""

    def close(self):
        self.sock.close()
