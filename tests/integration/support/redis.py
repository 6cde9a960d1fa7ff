"""RedisServer: a real redis-server on an ephemeral port (no persistence), for the rate_limit
Redis tests. Started and stopped by PID; restart() reuses the same port."""
from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from .common import free_port, stop_process, wait_until

REDIS_BIN = shutil.which("redis-server")


def resp_command(port, *args, timeout=5.0) -> bytes:
    """Sends one command in RESP and returns the first reply line (enough for PING, FLUSH)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(out)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n", 1)[0]


class RedisServer:
    def __init__(self, workdir: Path):
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
                 "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"],
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
