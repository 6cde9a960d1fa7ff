"""Raw HTTP/2 frames and flood clients, for the HTTP/2 abuse tests and bench/h2_flood.py.

No HTTP/2 state machine: frames are built by hand, so a client can send what a well-behaved
library never would (endless empty DATA, 1-byte WINDOW_UPDATEs, RST_STREAM on closed streams,
HEADERS on a lower stream id). `flood()` drives many connections from one thread with a
selector, each bounded in frames and time, and reports per connection whether the server sent
GOAWAY (and its code) and closed the connection.
"""
import selectors
import socket
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

NO_ERROR, PROTOCOL_ERROR, CANCEL, ENHANCE_YOUR_CALM = 0x0, 0x1, 0x8, 0xb

KINDS = ("empty_data", "window_update", "priority", "rst_stream", "settings", "ping")


def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def _hpack_str(s):
    b = s.encode()
    assert len(b) < 127
    return bytes([len(b)]) + b


def request_block(method="GET", path="/", authority="127.0.0.1", scheme="http", extra=()):
    """A stateless HPACK header block: static-table entries and literals without indexing, so
    the same bytes can be sent on any stream of any connection."""
    out = bytearray()
    out += {"GET": b"\x82", "POST": b"\x83"}[method]
    out += b"\x86" if scheme == "http" else b"\x87"
    out += b"\x84" if path == "/" else b"\x04" + _hpack_str(path)
    out += b"\x01" + _hpack_str(authority)  # :authority, literal without indexing, name 1
    for name, value in extra:
        out += b"\x00" + _hpack_str(name) + _hpack_str(value)
    return bytes(out)


def headers(sid, block, end_stream=True):
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block)


def rst(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, code.to_bytes(4, "big"))


def window_update(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, increment.to_bytes(4, "big"))


def goaway_code(payload):
    return int.from_bytes(payload[4:8], "big")


def parse_frames(buf):
    """(frames, rest): complete frames as (type, flags, stream id, payload)."""
    frames = []
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF,
                       bytes(buf[9:9 + n])))
        buf = buf[9 + n:]
    return frames, buf


def read_until_closed(sock, timeout):
    """Reads until EOF/reset or `timeout`: (frames, how) with how in eof|reset|timeout."""
    buf = b""
    deadline = time.monotonic() + timeout
    how = "timeout"
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            how = "reset"
            break
        except (socket.timeout, TimeoutError):
            break
        if not d:
            how = "eof"
            break
        buf += d
    frames, _ = parse_frames(buf)
    return frames, how


class Flooder:
    """One connection sending one kind of useless frame until the server closes it."""

    def __init__(self, port, kind, batch=200, max_frames=2_000_000, reconnect=False):
        self.port, self.kind, self.batch = port, kind, batch
        self.max_frames, self.reconnect = max_frames, reconnect
        self.sent = 0           # flood frames sent (all connections of this flooder)
        self.goaways = []       # GOAWAY error codes received
        self.closes = 0         # connections the server closed
        self.connections = 0
        self.done = False
        self.sock = None
        self.out = b""
        self.inbuf = b""
        self.next_sid = 1
        self._connect()

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.connections += 1
        self.inbuf = b""
        self.next_sid = 1
        self.out = PREFACE + frame(SETTINGS, 0, 0) + self._setup()

    def _setup(self):
        if self.kind == "empty_data":
            # An open request stream whose body never comes: empty DATA frames "continue" it.
            self.next_sid = 3
            return headers(1, request_block("POST", "/flood"), end_stream=False)
        if self.kind == "rst_stream":
            # A finished request: every RST_STREAM below is on a closed stream.
            self.next_sid = 3
            return headers(1, request_block("GET", "/flood")) + rst(1)
        return b""

    def _one(self):
        k = self.kind
        if k == "empty_data":
            return frame(DATA, 0, 1)
        if k == "window_update":
            return window_update(0, 1)
        if k == "priority":
            return frame(PRIORITY, 0, 1, (0).to_bytes(4, "big") + b"\x10")
        if k == "rst_stream":
            return rst(1)
        if k == "settings":
            return frame(SETTINGS, 0, 0, (4).to_bytes(2, "big") + (65535).to_bytes(4, "big"))
        if k == "ping":
            return frame(PING, 0, 0, self.sent.to_bytes(8, "big"))
        if k == "rapid_reset":
            sid = self.next_sid
            self.next_sid += 2
            return headers(sid, request_block("GET", "/reset")) + rst(sid)
        raise ValueError(k)

    def want_write(self):
        return not self.done

    def fill(self):
        if len(self.out) < 65536 and self.sent < self.max_frames:
            n = min(self.batch, self.max_frames - self.sent)
            self.out += b"".join(self._one() for _ in range(n))
            self.sent += n

    def on_writable(self):
        self.fill()
        if not self.out:
            return
        try:
            n = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except (BrokenPipeError, ConnectionResetError):
            self._closed()
            return
        self.out = self.out[n:]

    def on_readable(self):
        try:
            d = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            self._closed()
            return
        frames, self.inbuf = parse_frames(self.inbuf + d)
        for ftype, flags, _, payload in frames:
            if ftype == GOAWAY:
                self.goaways.append(goaway_code(payload))
            elif ftype == SETTINGS and not flags & ACK:
                self.out += frame(SETTINGS, ACK, 0)

    def _closed(self):
        self.closes += 1
        self.sock.close()
        self.sock = None
        if self.reconnect and self.sent < self.max_frames:
            self._connect()
        else:
            self.done = True

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.done = True


def flood(port, kind, conns=10, max_frames=2_000_000, seconds=60.0, reconnect=False,
          stop=None):
    """Runs `conns` flooders until each is closed by the server (or, with reconnect, until
    `stop()` or the bounds). Returns the flooders."""
    fl = [Flooder(port, kind, max_frames=max_frames, reconnect=reconnect) for _ in range(conns)]
    sel = selectors.DefaultSelector()
    registered = {}

    def sync(f):
        want = 0 if f.done or f.sock is None else (
            selectors.EVENT_READ | (selectors.EVENT_WRITE if f.out or f.sent < f.max_frames
                                    else 0))
        old = registered.get(f)
        if old and (old[0] is not f.sock or not want):
            sel.unregister(old[0])
            del registered[f]
            old = None
        if want and not old:
            sel.register(f.sock, want, f)
            registered[f] = (f.sock, want)
        elif want and old[1] != want:
            sel.modify(f.sock, want, f)
            registered[f] = (f.sock, want)

    for f in fl:
        sync(f)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(f.done for f in fl):
        if stop is not None and stop():
            break
        for key, ev in sel.select(timeout=0.1):
            f = key.data
            if ev & selectors.EVENT_READ:
                f.on_readable()
            if not f.done and f.sock is not None and ev & selectors.EVENT_WRITE:
                f.on_writable()
            sync(f)
    for f in fl:
        if f in registered:
            sel.unregister(registered[f][0])
        f.close()
    sel.close()
    return fl
