#!/usr/bin/python3
"""Memory per idle keep-alive connection, Gatehouse next to NGINX and HAProxy (one run).

Starts the shared harness's two origins (127.0.0.1:9001/9002), then each proxy in turn on
127.0.0.1:8080 with the harness's configs, opens N client connections, sends one request on each
(so every connection went through a full proxied exchange and sits idle in keep-alive), and
reports (RSS with N connections - RSS before) / N for the proxy's processes. Loopback only; every
process started here is stopped by PID. Usage: bench/conn_memory.py [N]   (default 2000)
"""
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("GATEHOUSE_BENCH_HARNESS", ROOT.parent / "shared" / "bench"))
CONF = HARNESS / "conf"
RUN = Path("/tmp/bench-run")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
CASES = {
    "nginx-ka1024": ["nginx", "-p", f"{RUN}/", "-e", f"{RUN}/mem-nginx.err", "-c",
                     str(CONF / "nginx-proxy-ka1024.conf")],
    "haproxy": ["haproxy", "-db", "-f", str(CONF / "haproxy.cfg")],
    "gatehouse": [str(ROOT / "build/release/gatehouse"), "run", "-c",
                  str(ROOT / "bench/gatehouse-h1.yaml")],
}


def rss_kib(pid):
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                                                     capture_output=True, text=True).stdout.split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def wait_port(port, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def measure(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(8080)
        time.sleep(0.5)  # settle after start-up allocations (measurement, not synchronisation)
        before = rss_kib(proc.pid)
        socks = []
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", 8080), timeout=10)
            s.sendall(b"GET /1k HTTP/1.1\r\nHost: bench\r\n\r\n")
            socks.append(s)
        for s in socks:
            got = b""
            while b"\r\n\r\n" not in got or len(got) < 1024:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        # Past two of Gatehouse's 5 s cache trims: blocks and frames the burst left and nothing
        # needed for a whole interval are freed, as on a quiet server.
        time.sleep(11)
        after = rss_kib(proc.pid)
        for s in socks:
            s.close()
        return (after - before) * 1024 / N
    finally:
        stop(proc)


def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    RUN.mkdir(exist_ok=True)
    origins = [subprocess.Popen(["nginx", "-p", f"{RUN}/", "-e", f"{RUN}/up{p}.err", "-c",
                                 str(CONF / f"upstream-{p}.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for p in (9001, 9002)]
    try:
        wait_port(9001)
        wait_port(9002)
        print(f"| case | bytes per idle keep-alive connection (N={N}) |\n|---|---|")
        for name, cmd in CASES.items():
            print(f"| {name} | {measure(cmd):,.0f} |", flush=True)
    finally:
        for o in origins:
            stop(o)


if __name__ == "__main__":
    main()
