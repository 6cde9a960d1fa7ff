"""The gatehouse process under test: config, start/stop, reload, metrics, access log."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from .client import RawConn
from .common import GATEHOUSE_BIN, IO_TIMEOUT, START_TIMEOUT, free_port, stop_process, wait_until


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

    def __init__(self, tmp_path: Path, config: dict, workers=2, name="gh", extra_args=()):
        self.dir = tmp_path / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "gatehouse.yaml"
        self.access_log_path = self.dir / "access.log"
        self.stderr_path = self.dir / "stderr.log"
        self.stdout_path = self.dir / "stdout.log"
        self.workers = workers
        self.extra_args = list(extra_args)  # more `run` arguments (e.g. --pid-file)
        self.user_config = config
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.admin_port = 0
        self.ports: dict[str, int] = {}

    # -- config
    def extra_port(self, name: str) -> int:
        """A stable free port for `"port": "@name"` in listeners (any name but "main")."""
        if name not in self.ports:
            # free_port() may hand back a port just given out (it is released at once).
            taken = {self.port, self.admin_port, *self.ports.values()}
            port = free_port()
            for _ in range(100):
                if port not in taken:
                    break
                port = free_port()
            self.ports[name] = port
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
            self._spawn(["run", "-c", str(self.config_path), "--workers", str(self.workers),
                         *self.extra_args])
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


def simple_config(*clusters_, routes=None, **extra):
    """Config with the given clusters and routes (default: everything to the first cluster)."""
    c = {"clusters": list(clusters_)}
    if routes is None:
        routes = [{"name": "all", "match": {"path_prefix": "/"}, "cluster": clusters_[0]["name"]}]
    c["routes"] = routes
    c.update(extra)
    return c
