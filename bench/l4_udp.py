#!/usr/bin/python3
"""UDP listener request/response rate through gatehouse (and NGINX `stream`), CPU per exchange.

One gatehouse (1 worker, no access log) with two UDP listeners on one cluster: `responses: 0`
(streaming: each client socket keeps its session) and `responses: 1` (DNS-style: every reply
ends the session, so each request opens a new session and upstream socket). With PEERS=1, one
NGINX (1 worker, `stream` module, `listen ... udp`) with the same two cases (no
`proxy_responses`, and `proxy_responses 1`) runs beside it; HAProxy 2.6 has no UDP proxy. The
proxies are pinned to CPU 1, the echo server and the client to CPU 0. The upstream is a UDP
echo server in its own process; the client is another process with SOCKETS sockets, each
keeping WINDOW requests in flight, for SECONDS. ROUNDS rounds, the proxy order alternating;
medians printed. Also measured once: the client straight to the echo server (the ceiling the
Python ends allow). CPU is utime + stime from /proc/PID/stat. Processes stopped by PID.
Usage: [PEERS=1] [ROUNDS=3] bench/l4_udp.py [SECONDS] [SOCKETS] [WINDOW]   (defaults 5, 16, 4)
"""
import json
import multiprocessing
import statistics
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("GATEHOUSE_BIN", str(ROOT / "build/release/gatehouse"))
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
SOCKETS = int(sys.argv[2]) if len(sys.argv) > 2 else 16
WINDOW = int(sys.argv[3]) if len(sys.argv) > 3 else 4
CLK = os.sysconf("SC_CLK_TCK")
PAYLOAD = b"x" * 64
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PEERS = os.environ.get("PEERS", "0") == "1"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def echo_server(port):
    os.sched_setaffinity(0, {0})
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", port))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)


def client(port, seconds, result):
    """Replies received in `seconds`, each socket keeping WINDOW requests in flight."""
    os.sched_setaffinity(0, {0})
    socks = []
    for _ in range(SOCKETS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    poller = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for s in socks:
        poller.register(s.fileno(), select.EPOLLIN)
        for _ in range(WINDOW):
            s.send(PAYLOAD)
    got = 0
    end = time.monotonic() + seconds
    last_progress = time.monotonic()
    while time.monotonic() < end:
        events = poller.poll(0.05)
        if not events and time.monotonic() - last_progress > 0.2:
            # A datagram lost (a full buffer): put the window back.
            for s in socks:
                s.send(PAYLOAD)
            last_progress = time.monotonic()
        for fd, _ in events:
            s = by_fd[fd]
            while True:
                try:
                    s.recv(2048)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                got += 1
                last_progress = time.monotonic()
                try:
                    s.send(PAYLOAD)
                except BlockingIOError:
                    pass
    result.value = got


def measure(port, gh_pid=None):
    result = multiprocessing.Value("q", 0)
    cpu0 = cpu_seconds(gh_pid) if gh_pid else 0
    p = multiprocessing.Process(target=client, args=(port, SECONDS, result))
    p.start()
    p.join(SECONDS + 30)
    cpu = (cpu_seconds(gh_pid) - cpu0) if gh_pid else 0
    n = result.value
    return n / SECONDS, (cpu / n * 1000 * 1000 if n else 0)


def nginx_conf(tmp, ports, echo_port):
    servers = "".join(
        f"  server {{ listen 127.0.0.1:{ports[name]} udp reuseport; proxy_pass 127.0.0.1:{echo_port};"
        f" proxy_timeout 10s;{extra} }}\n"
        for name, extra in (("streaming", ""), ("responses1", " proxy_responses 1;")))
    return (f"load_module {STREAM_MODULE};\n"
            f"worker_processes 1; daemon off; master_process off; pid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/nginx.err warn; worker_rlimit_nofile 16384;\n"
            f"events {{ worker_connections 8192; }}\n"
            f"stream {{\n{servers}}}\n")


def wait_udp(port):
    """Until an echo comes back through the proxy (10 s at most)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        for _ in range(100):
            s.sendto(b"ping", ("127.0.0.1", port))
            try:
                s.recv(64)
                return
            except OSError:
                continue
    raise RuntimeError(f"no echo through port {port}")


def start_proxy(kind, tmp, ports, echo_port):
    if kind == "gatehouse":
        cmd = [BIN, "run", "-c", str(Path(tmp) / "gatehouse.yaml"), "--workers", "1"]
        gh_ports = ports["gatehouse"]
    else:
        (Path(tmp) / "nginx.conf").write_text(nginx_conf(tmp, ports["nginx"], echo_port))
        cmd = ["nginx", "-p", f"{tmp}/", "-c", f"{tmp}/nginx.conf"]
        gh_ports = ports["nginx"]
    proc = subprocess.Popen(["taskset", "-c", "1", *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for name in ("streaming", "responses1"):
        wait_udp(gh_ports[name])
    return proc


def main():
    echo_port = free_port(socket.SOCK_DGRAM)
    echo = multiprocessing.Process(target=echo_server, args=(echo_port,), daemon=True)
    echo.start()
    ports = {kind: {"streaming": free_port(socket.SOCK_DGRAM),
                    "responses1": free_port(socket.SOCK_DGRAM)} for kind in ("gatehouse", "nginx")}
    main_port, admin_port = free_port(), free_port()
    cluster = {"name": "echo", "endpoints": [{"host": "127.0.0.1", "port": echo_port}]}
    listeners = [{"name": "main", "address": "127.0.0.1", "port": main_port}]
    for name, responses in (("streaming", 0), ("responses1", 1)):
        listeners.append({"name": name, "address": "127.0.0.1", "port": ports["gatehouse"][name],
                          "mode": "udp", "udp": {"cluster": "echo", "responses": responses,
                                                 "idle_timeout": "10s"}})
    config = {"watch": False, "clusters": [cluster], "listeners": listeners,
              "admin": {"address": "127.0.0.1", "port": admin_port},
              "access_log": {"path": "off"}}
    kinds = ["gatehouse", "nginx"] if PEERS else ["gatehouse"]
    results = {(k, n): [] for k in kinds for n in ("streaming", "responses1")}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "gatehouse.yaml").write_text(json.dumps(config))
        try:
            direct, _ = measure(echo_port)
            print(f"direct to the echo server: {direct:10.0f} replies/s", flush=True)
            for r in range(ROUNDS):
                for kind in (kinds if r % 2 == 0 else kinds[::-1]):
                    proc = start_proxy(kind, tmp, ports, echo_port)
                    try:
                        for name in ("streaming", "responses1"):
                            rate, cpu_us = measure(ports[kind][name], proc.pid)
                            results[(kind, name)].append((rate, cpu_us))
                            print(f"round {r} {kind:9} {name:10}: {rate:8.0f} replies/s, "
                                  f"CPU {cpu_us:6.1f} ms per 1000 exchanges", flush=True)
                    finally:
                        proc.terminate()
                        proc.wait(20)
            for (kind, name), rows in results.items():
                rate = statistics.median(r for r, _ in rows)
                cpu = statistics.median(c for _, c in rows)
                print(f"median {kind:9} {name:10}: {rate:8.0f} replies/s, "
                      f"CPU {cpu:6.1f} ms per 1000 exchanges")
        finally:
            echo.terminate()
            echo.join(5)


if __name__ == "__main__":
    main()
