"""RedisServer: a real redis-server on an ephemeral port (no persistence), for the rate_limit
Redis tests. Started and stopped by PID; restart() reuses the same port."""
from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from .common import free_port, stop_process, wait_until

REDIS_BIN = shutil.which("redis-server")


def _encode(args) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def resp_command(port, *args, auth=None, db=None, timeout=5.0) -> bytes:
    """Sends one command in RESP (after AUTH / SELECT when given) and returns the first line of
    its reply (enough for PING, FLUSH, DBSIZE)."""
    pre = []
    if auth:
        pre.append(("AUTH", auth))
    if db is not None:
        pre.append(("SELECT", str(db)))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"".join(_encode(p) for p in pre) + _encode(args))
        buf = b""
        while buf.count(b"\r\n") < len(pre) + 1:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n")[len(pre)]


class RedisServer:
    def __init__(self, workdir: Path, extra_args=()):
        self.extra_args = list(extra_args)
        self.password = None
        if "--requirepass" in self.extra_args:
            self.password = self.extra_args[self.extra_args.index("--requirepass") + 1]
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log = None

    def start(self, port=None, attempts=3):
        for _ in range(attempts):
            self.port = port or free_port()
            self.log = open(self.dir / "redis.log", "ab")
            self.proc = subprocess.Popen(
                [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
                 *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
            try:
                wait_until(self._pong, 10, message="redis-server to answer PING")
                return self
            except AssertionError:
                self.stop()
                if port:
                    raise
        raise AssertionError("redis-server did not start")

    def _pong(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode}")
        try:
            if self.password:
                return resp_command(self.port, "PING", auth=self.password, timeout=1.0) == b"+PONG"
            return resp_command(self.port, "PING", timeout=1.0) == b"+PONG"
        except OSError:
            return False

    def kill(self):
        """SIGKILL, like a crash: no goodbye to clients."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.log:
            self.log.close()
            self.log = None

    def stop(self):
        if self.proc:
            stop_process(self.proc, timeout=10)
        if self.log:
            self.log.close()
            self.log = None

    def restart(self):
        """A new server on the same port (empty: nothing was persisted)."""
        self.kill()
        return self.start(port=self.port)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"
