#!/usr/bin/python3
"""UDP listener request/response rate through gatehouse, and its CPU per 1000 exchanges.

One gatehouse (1 worker, no access log) with two UDP listeners on one cluster: `responses: 0`
(streaming: each client socket keeps its session) and `responses: 1` (DNS-style: every reply
ends the session, so each request opens a new session and upstream socket). The upstream is a
UDP echo server in its own process; the client is another process with SOCKETS sockets, each
keeping WINDOW requests in flight, for SECONDS. Also measured: the same client straight to the
echo server (the ceiling the Python ends allow). Prints replies/s per case and gatehouse's CPU
(utime + stime from /proc/PID/stat) per 1000 exchanges. Processes stopped by PID.
Usage: bench/l4_udp.py [SECONDS] [SOCKETS] [WINDOW]   (defaults 5, 16, 4)
"""
import json
import multiprocessing
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


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def echo_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", port))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)


def client(port, seconds, result):
    """Replies received in `seconds`, each socket keeping WINDOW requests in flight."""
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


def main():
    echo_port = free_port(socket.SOCK_DGRAM)
    echo = multiprocessing.Process(target=echo_server, args=(echo_port,), daemon=True)
    echo.start()
    ports = {"main": free_port(), "admin": free_port(), "streaming": free_port(socket.SOCK_DGRAM),
             "responses1": free_port(socket.SOCK_DGRAM)}
    cluster = {"name": "echo", "endpoints": [{"host": "127.0.0.1", "port": echo_port}]}
    listeners = [{"name": "main", "address": "127.0.0.1", "port": ports["main"]}]
    for name, responses in (("streaming", 0), ("responses1", 1)):
        listeners.append({"name": name, "address": "127.0.0.1", "port": ports[name],
                          "mode": "udp", "udp": {"cluster": "echo", "responses": responses,
                                                 "idle_timeout": "10s"}})
    config = {"watch": False, "clusters": [cluster], "listeners": listeners,
              "admin": {"address": "127.0.0.1", "port": ports["admin"]},
              "access_log": {"path": "off"}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gatehouse.yaml"
        path.write_text(json.dumps(config))
        gh = subprocess.Popen([BIN, "run", "-c", str(path), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", ports["main"]), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            direct, _ = measure(echo_port)
            print(f"direct to the echo server: {direct:10.0f} replies/s")
            for name in ("streaming", "responses1"):
                rate, cpu_us = measure(ports[name], gh.pid)
                print(f"through gatehouse, {name:10}: {rate:10.0f} replies/s, "
                      f"gatehouse CPU {cpu_us:6.1f} ms per 1000 exchanges")
        finally:
            gh.terminate()
            gh.wait(20)
            echo.terminate()
            echo.join(5)


if __name__ == "__main__":
    main()
