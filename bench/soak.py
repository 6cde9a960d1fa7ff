#!/usr/bin/python3
"""Soak: mixed traffic through one Gatehouse for a long run, with reloads and a killed upstream.

Traffic, all at once, for --minutes (default 30):
  - HTTP/1.1: h2load --h1 in 10 s rounds (-c 8, --rps per client) to two NGINX origins;
  - h2c: h2load in 10 s rounds (-c 4 -m 10) to the same origins;
  - WebSocket: 4 clients echoing a message every 100 ms (a Python echo upstream);
  - SSE: 4 clients reading a 5 Hz event stream (a Python ticker upstream);
  - gRPC: unary calls from a Python grpcio client (a Python gRPC upstream, h2c).
Every --reload-every seconds (default 10) the config changes (a header value) and Gatehouse gets
SIGHUP; every --kill-every seconds (default 60) one NGINX origin is SIGKILLed and restarted 5 s
later. Every 10 s the proxy's RSS and open fds are recorded.

Printed at the end (and written as summary.json beside samples.csv in --out): the RSS slope
after the first two minutes (least squares, MB per 10 minutes), the fd range, reloads, and the
errors seen by each kind of client. Goals: slope under 1 MB / 10 min, zero errors beyond requests
that were in flight on a killed upstream (retries cover those: the HTTP routes retry resets and
connect failures on the other origin). Exit status 1 when a goal is missed.

Loopback only; ephemeral ports; every process started here is stopped by PID; every loop is
bounded by the run's deadline. Not part of CI.

  bench/soak.sh                        30 minutes
  bench/soak.sh --minutes 3            a quick check of the script itself
"""
import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("GATEHOUSE_BIN", str(ROOT / "build" / "release" / "gatehouse"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from support.common import free_port, stop_process, wait_until  # noqa: E402
from support.gatehouse import Gatehouse  # noqa: E402
from support.streams import LoopThread, SseClient, SseTicker, WsEchoServer  # noqa: E402

import grpc  # noqa: E402
import websockets  # noqa: E402
from concurrent import futures  # noqa: E402

SERVICE = "soak.Echo"


class Errors:
    """Per-kind counts of requests done and failed, written from several threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = {}
        self.failed = {}
        self.last = {}

    def add(self, kind, done=0, failed=0, why=None):
        with self.lock:
            self.done[kind] = self.done.get(kind, 0) + done
            self.failed[kind] = self.failed.get(kind, 0) + failed
            if failed and why:
                self.last[kind] = str(why)[:700]


# -- upstreams ------------------------------------------------------------------------------

def nginx_conf(run: Path, port: int) -> str:
    body = "a" * 1024
    return f"""worker_processes 1; daemon off; master_process off; pid {run}/nginx-{port}.pid;
error_log {run}/nginx-{port}.err warn; worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path {run}/b; proxy_temp_path {run}/p; fastcgi_temp_path {run}/f;
  uwsgi_temp_path {run}/u; scgi_temp_path {run}/s;
  server {{ listen 127.0.0.1:{port} reuseport; location / {{ return 200 "{body}"; }} }}
}}
"""


class Origin:
    """One NGINX process on a fixed port; kill() is SIGKILL by PID, start() brings it back."""

    def __init__(self, run: Path, port: int):
        self.run, self.port, self.proc = run, port, None
        self.conf = run / f"nginx-{port}.conf"
        self.conf.write_text(nginx_conf(run, port))

    def start(self):
        self.proc = subprocess.Popen(["nginx", "-p", f"{self.run}/", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", "-m", "1",
                                           f"http://127.0.0.1:{self.port}/"]).returncode == 0,
                   20, 0.05, f"nginx on {self.port}")

    def kill(self):
        if self.proc:
            stop_process(self.proc, signal.SIGKILL, 10)
            self.proc = None

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"


class GrpcEcho:
    def __init__(self):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"echo:" + req)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Unary": handler}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(0).wait(10)


# -- config ---------------------------------------------------------------------------------

def config(origins, ws, sse, grpc_port, generation):
    retry = {"attempts": 3, "on": ["connect-failure", "reset", "gateway-error"]}
    hc = {"type": "tcp", "interval": "500ms", "timeout": "500ms", "unhealthy_threshold": 1}
    return {
        "access_log": {"enabled": False},
        "clusters": [
            {"name": "web", "endpoints": [o.endpoint for o in origins], "health_check": hc},
            {"name": "ws", "endpoints": [ws.endpoint]},
            {"name": "sse", "endpoints": [sse.endpoint]},
            {"name": "grpc", "protocol": "h2c", "endpoints": [f"127.0.0.1:{grpc_port}"]},
        ],
        "routes": [
            {"name": "ws", "match": {"path_prefix": "/ws"}, "cluster": "ws"},
            {"name": "sse", "match": {"path_prefix": "/events"}, "cluster": "sse"},
            {"name": "grpc", "match": {"path_prefix": f"/{SERVICE}/"}, "cluster": "grpc"},
            {"name": "web", "match": {"path_prefix": "/"}, "cluster": "web", "retry": retry,
             "policies": [{"name": "headers", "config": {
                 "response": {"set": {"x-soak-generation": str(generation)}}}}]},
        ],
    }


# -- clients --------------------------------------------------------------------------------

H2LOAD_REQ = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                        r"(\d+) failed, (\d+) errored, (\d+) timeout")
H2LOAD_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def h2load_rounds(kind, args, url, deadline, errors):
    while time.monotonic() + 12 < deadline:
        out = subprocess.run(["h2load", *args, "-D", "10", url], capture_output=True, text=True,
                             timeout=60).stdout
        m, s = H2LOAD_REQ.search(out), H2LOAD_STATUS.search(out)
        if not m or not s:
            errors.add(kind, failed=1, why=out[-300:])
            continue
        done = int(m.group(3))
        bad = int(m.group(5)) + int(m.group(6)) + int(m.group(7)) + int(s.group(4))
        errors.add(kind, done=done, failed=bad, why=f"{bad} of {done}: {out[-600:]}")


def ws_client(url, deadline, errors):
    async def run():
        ws, i = None, 0
        while time.monotonic() < deadline:
            try:
                if ws is None:
                    ws = await websockets.connect(url, ping_interval=None, open_timeout=15,
                                                  close_timeout=1)
                msg = f"m{i}"
                await ws.send(msg)
                got = await asyncio.wait_for(ws.recv(), 15)
                errors.add("websocket", done=1, failed=int(got != msg), why=f"got {got!r}")
                i += 1
                await asyncio.sleep(0.1)
            except Exception as e:  # noqa: BLE001 - every failure is counted, then reconnect
                errors.add("websocket", failed=1, why=repr(e))
                ws = None
                await asyncio.sleep(0.5)
        if ws is not None:
            await ws.close()
    lt = LoopThread()
    try:
        lt.run(run(), timeout=deadline - time.monotonic() + 60)
    finally:
        lt.close()


def sse_client(port, deadline, errors):
    client = None
    while time.monotonic() < deadline:
        try:
            if client is None:
                client = SseClient(port)
                if client.status != 200:
                    raise ConnectionError(f"status {client.status}")
            client.next_event()
            errors.add("sse", done=1)
        except Exception as e:  # noqa: BLE001
            errors.add("sse", failed=1, why=repr(e))
            if client:
                client.close()
            client = None
            time.sleep(0.5)
    if client:
        client.close()


def grpc_client(port, deadline, errors):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary")
        while time.monotonic() < deadline:
            try:
                got = call(b"ping", timeout=10)
                errors.add("grpc", done=1, failed=int(got != b"echo:ping"), why=f"got {got!r}")
            except grpc.RpcError as e:
                errors.add("grpc", failed=1, why=f"{e.code()} {e.details()}")
            time.sleep(0.02)


# -- the run --------------------------------------------------------------------------------

def sample(pid):
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def slope_mb_per_10min(points):
    """Least-squares slope of (seconds, KiB) points, in MB per 10 minutes."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    kib_per_s = sum((t - mx) * (v - my) for t, v in points) / den if den else 0.0
    return kib_per_s * 600 * 1024 / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--reload-every", type=float, default=10)
    ap.add_argument("--kill-every", type=float, default=60)
    ap.add_argument("--rps", type=int, default=100, help="HTTP/1.1 requests/s per h2load client")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="gh-soak."))
    out.mkdir(parents=True, exist_ok=True)
    run = out / "run"
    run.mkdir(exist_ok=True)

    origins = [Origin(run, free_port()), Origin(run, free_port())]
    ws, sse, grpc_up = WsEchoServer(), SseTicker(interval=0.2), GrpcEcho()
    gh = None
    threads = []
    errors = Errors()
    try:
        for o in origins:
            o.start()
        generation = 0
        gh = Gatehouse(run, config(origins, ws, sse, grpc_up.port, generation), workers=a.workers)
        gh.start()
        t0 = time.monotonic()
        deadline = t0 + a.minutes * 60
        url = f"http://127.0.0.1:{gh.port}/1k"
        work = [
            (h2load_rounds, ("http1", ["--h1", "-c", "8", "--rps", str(a.rps)], url)),
            (h2load_rounds, ("h2c", ["-c", "4", "-m", "10", "--rps", str(a.rps)], url)),
            *[(ws_client, (f"ws://127.0.0.1:{gh.port}/ws",)) for _ in range(4)],
            *[(sse_client, (gh.port,)) for _ in range(4)],
            (grpc_client, (gh.port,)),
        ]
        for fn, args in work:
            t = threading.Thread(target=fn, args=(*args, deadline, errors), daemon=True)
            t.start()
            threads.append(t)

        samples, reloads, kills = [], {"success": 0, "failure": 0}, 0
        next_sample = next_reload = t0
        next_kill = t0 + a.kill_every
        with open(out / "samples.csv", "w") as csv:
            csv.write("seconds,rss_kib,fds\n")
            while time.monotonic() < deadline:
                now = time.monotonic()
                if now >= next_sample:
                    rss, fds = sample(gh.pid)
                    samples.append((now - t0, rss, fds))
                    csv.write(f"{now - t0:.0f},{rss},{fds}\n")
                    csv.flush()
                    next_sample += 10
                if now >= next_reload and now > t0 + 1:
                    generation += 1
                    gh.write_config(config(origins, ws, sse, grpc_up.port, generation))
                    reloads[gh.reload()] += 1
                    next_reload += a.reload_every
                if now >= next_kill:
                    victim = origins[kills % 2]
                    victim.kill()
                    kills += 1
                    time.sleep(5)
                    victim.start()
                    next_kill += a.kill_every
                time.sleep(0.2)
        for t in threads:
            t.join(120)
        after_warmup = [(t, rss) for t, rss, _ in samples if t >= 120] or \
                       [(t, rss) for t, rss, _ in samples]
        summary = {
            "minutes": a.minutes,
            "rss_kib_first": samples[0][1] if samples else 0,
            "rss_kib_last": samples[-1][1] if samples else 0,
            "rss_slope_mb_per_10min": round(slope_mb_per_10min(after_warmup), 3),
            "fds_min": min(f for _, _, f in samples) if samples else 0,
            "fds_max": max(f for _, _, f in samples) if samples else 0,
            "reloads": reloads,
            "upstream_kills": kills,
            "done": errors.done,
            "failed": errors.failed,
            "last_failure": errors.last,
            "gatehouse_exit": gh.stop(),
        }
        gh = None
    finally:
        if gh is not None:
            gh.stop()
        for o in origins:
            o.kill()
        ws.close()
        sse.close()
        grpc_up.stop()
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"samples: {out / 'samples.csv'}")
    ok = (summary["rss_slope_mb_per_10min"] < 1.0 and sum(errors.failed.values()) == 0
          and reloads["failure"] == 0 and summary["gatehouse_exit"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
