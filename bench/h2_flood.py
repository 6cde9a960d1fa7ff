#!/usr/bin/python3
"""Latency of a well-behaved HTTP/2 client while other connections flood the gateway.

Starts one NGINX origin (127.0.0.1:9001, /1k) and Gatehouse (release build, 2 workers, h2c on
127.0.0.1:8080, access log off), then for each case runs a well-behaved client -- one h2c
connection, sequential GETs of /1k -- for a fixed number of requests while a separate process
floods with CONNS connections of one kind (reconnecting whenever the gateway closes one), and
prints the client's p50 / p90 / p99 / max in ms, the flood frames sent and the connections the
gateway closed. The first case has no flood. Loopback only; every process started here is
stopped by PID. Not part of CI.

Usage: bench/h2_flood.py [--requests N] [--conns C] [--kinds rapid_reset,ping,...]
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from support.h2flood import (DATA, END_STREAM, HEADERS, PREFACE, SETTINGS, ACK,  # noqa: E402
                             frame, headers, parse_frames, request_block, window_update)

PROXY, ORIGIN, ADMIN = 8080, 9001, 9911


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} did not come up")


def start_origin(run):
    body = "a" * 1024
    conf = run / "origin.conf"
    conf.write_text(f"""worker_processes 1; daemon off; master_process off; pid {run}/origin.pid;
error_log {run}/origin.err warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path {run}/b; proxy_temp_path {run}/p; fastcgi_temp_path {run}/f;
  uwsgi_temp_path {run}/u; scgi_temp_path {run}/s;
  server {{ listen 127.0.0.1:{ORIGIN}; location / {{ return 200 "{body}"; }} }} }}
""")
    p = subprocess.Popen(["nginx", "-p", f"{run}/", "-e", f"{run}/origin.err", "-c", str(conf)])
    wait_port(ORIGIN)
    return p


def start_gatehouse(run, binary):
    cfg = {
        "workers": 2, "watch": False,
        "listeners": [{"name": "bench", "address": "127.0.0.1", "port": PROXY}],
        "admin": {"enabled": True, "address": "127.0.0.1", "port": ADMIN},
        "access_log": {"enabled": False},
        "clusters": [{"name": "origin", "endpoints": [f"127.0.0.1:{ORIGIN}"]}],
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "origin"}],
    }
    path = run / "gatehouse.yaml"
    path.write_text(json.dumps(cfg))
    p = subprocess.Popen([binary, "run", "-c", str(path)], stdout=subprocess.DEVNULL,
                         stderr=open(run / "gatehouse.err", "w"))
    wait_port(PROXY)
    return p


def good_client(n):
    """n sequential GETs on one h2c connection; returns latencies in ms."""
    s = socket.create_connection(("127.0.0.1", PROXY))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0) + window_update(0, 1 << 30))
    block = request_block("GET", "/1k")
    buf = b""
    lat = []
    sid = 1
    acked = False
    for _ in range(n):
        t0 = time.perf_counter()
        s.sendall(headers(sid, block))
        done = False
        while not done:
            d = s.recv(65536)
            if not d:
                raise SystemExit("the gateway closed the well-behaved client's connection")
            frames, buf = parse_frames(buf + d)
            for ftype, flags, fsid, payload in frames:
                if ftype == SETTINGS and not flags & ACK and not acked:
                    s.sendall(frame(SETTINGS, ACK, 0))
                    acked = True
                elif ftype == DATA and len(payload):
                    s.sendall(window_update(fsid, len(payload)))
                if fsid == sid and ftype in (DATA, HEADERS) and flags & END_STREAM:
                    done = True
        lat.append((time.perf_counter() - t0) * 1000)
        sid += 2
    s.close()
    return lat


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def metric(name, **labels):
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=5).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not want or want in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


FLOODER = """
import json, os, sys
sys.path.insert(0, {path!r})
from support.h2flood import flood
fl = flood({port}, {kind!r}, conns={conns}, reconnect=True, seconds={seconds},
           max_frames=10**9, stop=lambda: os.path.exists({stop!r}))
print(json.dumps({{"sent": sum(f.sent for f in fl), "closes": sum(f.closes for f in fl)}}))
"""


def run_case(kind, args, run):
    flooder = None
    stop = run / f"stop-{kind}"
    if kind:
        code = FLOODER.format(path=str(ROOT / "tests" / "integration"), port=PROXY, kind=kind,
                              conns=args.conns, seconds=args.max_seconds, stop=str(stop))
        flooder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                   text=True)
        time.sleep(1.0)  # let the flood reach its steady state
    before = metric("gatehouse_http2_connections_total")
    lat = good_client(args.requests)
    stats = {}
    if flooder:
        stop.touch()
        try:
            out, _ = flooder.communicate(timeout=30)
            stats = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError):
            flooder.kill()
            flooder.wait()
    conns = metric("gatehouse_http2_connections_total") - before
    print(f"| {kind or 'none'} | {pct(lat, 50):.2f} | {pct(lat, 90):.2f} | {pct(lat, 99):.2f} "
          f"| {max(lat):.2f} | {stats.get('sent', 0):,} | {int(conns)} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--kinds", default="rapid_reset")
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--binary", default=str(ROOT / "build/release/gatehouse"))
    args = ap.parse_args()
    run = Path(tempfile.mkdtemp(prefix="h2flood-"))
    procs = []
    try:
        procs.append(start_origin(run))
        procs.append(start_gatehouse(run, args.binary))
        good_client(200)  # warm-up: upstream connections, page cache
        print(f"well-behaved client: {args.requests} sequential GETs of 1 KiB over one h2c "
              f"connection; flood: {args.conns} connections, reconnecting")
        print("| flood | p50 ms | p90 ms | p99 ms | max ms | flood frames | connections opened |")
        print("|---|---|---|---|---|---|---|")
        for kind in [None] + [k for k in args.kinds.split(",") if k]:
            run_case(kind, args, run)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
