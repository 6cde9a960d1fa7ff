"""H2Server: a small HTTP/2 (h2c, prior knowledge) upstream on the `h2` library, with scripted
misbehaviour for the gateway's HTTP/2 client: GOAWAY after some requests, REFUSED_STREAM for
chosen requests, a low SETTINGS_MAX_CONCURRENT_STREAMS that it enforces by refusing streams
over it, and responses held until the test releases them.

Each connection runs in its own thread. Every request is recorded as a dict (connection
number, stream id, method, path, body length, what was done with it); responses are JSON:
{"conn": n, "stream": id, "path": ..., "method": ..., "body_length": n}.
"""
import collections
import json
import socket
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

from .common import IO_TIMEOUT


class H2Server:
    def __init__(self, max_concurrent_streams=None, goaway_after=None, refuse=None):
        """goaway_after: on the first connection, once this many requests arrived, answer the
        first one, send GOAWAY(last stream id = that request's), and close.
        refuse(n) -> bool: refuse the n-th request of the server (0-based) with REFUSED_STREAM.
        max_concurrent_streams: advertised, and enforced by refusing the streams over it."""
        self.max_streams = max_concurrent_streams
        self.goaway_after = goaway_after
        self.refuse = refuse or (lambda n: False)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.requests = []          # every request seen, in order
        self.connections = 0
        self.max_active = collections.Counter()  # connection -> most streams accepted at once
        self.held = set()           # request paths whose answer waits for release()
        self.released = set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"127.0.0.1:{self.port}"
        self.stopping = False
        self.threads = []

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping = True
        with self.cond:
            self.cond.notify_all()
        try:
            self.sock.close()
        except OSError:
            pass
        for t in self.threads:
            t.join(timeout=5)

    def hold(self, path):
        with self.lock:
            self.held.add(path)

    def release(self, path=None):
        with self.cond:
            if path is None:
                self.released |= self.held
            else:
                self.released.add(path)
            self.cond.notify_all()

    def wait_requests(self, n, timeout=IO_TIMEOUT * 2):
        """Blocks until n requests were accepted (not refused)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len([r for r in self.requests if r["action"] != "refused"]) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"upstream saw {self.requests}, wanted {n} accepted"
                self.cond.wait(left)

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            t = threading.Thread(target=self._serve, args=(conn, n), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, sock, conn_no):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=cfg)
        if self.max_streams is not None:
            conn.local_settings = h2.settings.Settings(
                client=False,
                initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                                self.max_streams})
        conn.initiate_connection()
        if self.max_streams is not None:
            # h2 would end the whole connection over its limit; refuse the stream instead, as
            # RFC 9113 §5.1.2 allows (the gateway may retry it).
            conn.local_settings._settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = \
                collections.deque([1 << 20])
        send_lock = threading.Lock()
        state = {"active": set(), "pending": [], "closing": False}

        def flush():
            data = conn.data_to_send()
            if data:
                try:
                    sock.sendall(data)
                except OSError:
                    pass

        with send_lock:
            flush()
        bodies = collections.defaultdict(int)
        heads = {}
        sock.settimeout(0.05)
        try:
            while not self.stopping and not state["closing"]:
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    self._answer_released(conn, sock, send_lock, state, conn_no, flush)
                    continue
                except OSError:
                    break
                if not data:
                    break
                with send_lock:
                    events = conn.receive_data(data)
                    for ev in events:
                        if isinstance(ev, h2.events.RequestReceived):
                            heads[ev.stream_id] = dict(ev.headers)
                        elif isinstance(ev, h2.events.DataReceived):
                            bodies[ev.stream_id] += len(ev.data)
                            conn.acknowledge_received_data(ev.flow_controlled_length,
                                                           ev.stream_id)
                        elif isinstance(ev, h2.events.StreamEnded):
                            self._on_request(conn, state, conn_no, ev.stream_id,
                                             heads.pop(ev.stream_id, {}),
                                             bodies.pop(ev.stream_id, 0))
                        elif isinstance(ev, h2.events.StreamReset):
                            state["active"].discard(ev.stream_id)
                    flush()
                self._answer_released(conn, sock, send_lock, state, conn_no, flush)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _on_request(self, conn, state, conn_no, sid, head, body_length):
        with self.cond:
            n = len(self.requests)
            rec = {"conn": conn_no, "stream": sid, "method": head.get(":method"),
                   "path": head.get(":path"), "body_length": body_length, "action": "answered"}
            refuse = self.refuse(n) or (self.max_streams is not None and
                                        len(state["active"]) >= self.max_streams)
            if refuse:
                rec["action"] = "refused"
            else:
                state["active"].add(sid)
                self.max_active[conn_no] = max(self.max_active[conn_no], len(state["active"]))
                if rec["path"] in self.held:
                    rec["action"] = "held"
            self.requests.append(rec)
            self.cond.notify_all()
        if refuse:
            conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        state["pending"].append(rec)
        if self.goaway_after is not None and conn_no == 1 and \
                len([r for r in self.requests if r["conn"] == 1]) >= self.goaway_after:
            # Answer the first request, then GOAWAY: the others were never processed.
            first = state["pending"].pop(0)
            self._respond(conn, state, first)
            conn.close_connection(last_stream_id=first["stream"])
            state["closing"] = True

    def _answer_released(self, conn, sock, send_lock, state, conn_no, flush):
        with send_lock:
            if state["closing"]:
                return
            ready = []
            with self.lock:
                for rec in list(state["pending"]):
                    if rec["action"] != "held" or rec["path"] in self.released:
                        ready.append(rec)
                        state["pending"].remove(rec)
            for rec in ready:
                self._respond(conn, state, rec)
            if ready:
                flush()

    def _respond(self, conn, state, rec):
        body = json.dumps({k: rec[k] for k in ("conn", "stream", "path", "method",
                                                "body_length")}).encode()
        conn.send_headers(rec["stream"], [(":status", "200"), ("content-type", "application/json"),
                                          ("content-length", str(len(body)))])
        conn.send_data(rec["stream"], body, end_stream=True)
        state["active"].discard(rec["stream"])
