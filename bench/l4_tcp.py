#!/usr/bin/python3
"""TCP listener relay cost: splice() against read()/write(), in one gatehouse process.

One gatehouse (1 worker, no access log) with two TCP listeners on the same cluster: one with
`relay: splice`, one with `relay: copy`. The upstream is a Python sink/echo server (its CPU is
not counted). Each round runs both cases back to back (interleaved, order alternating), and
measures gatehouse's CPU (utime + stime from /proc/PID/stat) over:
  stream  - STREAMS connections each sending BYTES_PER_STREAM bytes to a sink: CPU per GB;
  conns   - CONNS connections, each: connect, 1 KiB each way through an echo, close: CPU per
            connection (the relay mode matters little here; pipes come from a per-worker pool).
Prints every round and the median of each case. Loopback only; processes stopped by PID.
Usage: bench/l4_tcp.py [ROUNDS] [GB_PER_ROUND] [CONNS]   (defaults 5, 2, 3000)
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("GATEHOUSE_BIN", str(ROOT / "build/release/gatehouse"))
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
GB = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
CONNS = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
STREAMS = 4
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def serve(port, handler):
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(1024)

    def loop():
        while True:
            c, _ = lsock.accept()
            threading.Thread(target=handler, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def sink(c):
    buf = bytearray(1 << 20)
    while c.recv_into(buf):
        pass
    c.close()


def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()


def stream_case(port, total):
    per = int(total / STREAMS)
    chunk = memoryview(b"\0" * (1 << 20))

    def one():
        with socket.create_connection(("127.0.0.1", port)) as s:
            left = per
            while left > 0:
                n = s.send(chunk[:min(left, len(chunk))])
                left -= n
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
    ts = [threading.Thread(target=one) for _ in range(STREAMS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def conns_case(port, n):
    payload = b"a" * 1024

    def some(k):
        for _ in range(k):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(payload)
                got = 0
                while got < len(payload):
                    got += len(s.recv(4096))
    ts = [threading.Thread(target=some, args=(n // 4,)) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def measure(pid, fn, *args):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    fn(*args)
    return cpu_seconds(pid) - c0, time.monotonic() - t0


def main():
    sink_port, echo_port = free_port(), free_port()
    serve(sink_port, sink)
    serve(echo_port, echo)
    ports = {k: free_port() for k in ("splice", "copy", "splice_echo", "copy_echo", "main", "admin")}
    listeners = [f"{{name: main, address: 127.0.0.1, port: {ports['main']}}}"]
    for relay in ("splice", "copy"):
        listeners.append(f"{{name: {relay}, address: 127.0.0.1, port: {ports[relay]}, mode: tcp, "
                         f"tcp: {{cluster: sink, relay: {relay}}}}}")
        listeners.append(f"{{name: {relay}_echo, address: 127.0.0.1, port: "
                         f"{ports[relay + '_echo']}, mode: tcp, tcp: {{cluster: echo, relay: {relay}}}}}")
    conf = (f"workers: 1\nwatch: false\naccess_log: {{enabled: false}}\n"
            f"admin: {{address: 127.0.0.1, port: {ports['admin']}}}\n"
            f"clusters:\n  - {{name: sink, endpoints: [{{host: 127.0.0.1, port: {sink_port}}}]}}\n"
            f"  - {{name: echo, endpoints: [{{host: 127.0.0.1, port: {echo_port}}}]}}\n"
            f"listeners:\n" + "".join(f"  - {l}\n" for l in listeners))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "l4.yaml"
        path.write_text(conf)
        proc = subprocess.Popen([BIN, "run", "-c", str(path)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", ports["splice"]), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            results = {k: [] for k in ("splice", "copy")}
            for r in range(ROUNDS):
                order = ("splice", "copy") if r % 2 == 0 else ("copy", "splice")
                for relay in order:
                    cpu_s, wall_s = measure(proc.pid, stream_case, ports[relay], GB * 1e9)
                    cpu_c, wall_c = measure(proc.pid, conns_case, ports[relay + "_echo"], CONNS)
                    row = (cpu_s / GB, GB / wall_s, cpu_c / CONNS * 1e6, CONNS / wall_c)
                    results[relay].append(row)
                    print(f"round {r} {relay:6}: {row[0]:.3f} CPU s/GB ({row[1]:.2f} GB/s wall), "
                          f"{row[2]:.1f} CPU us/conn ({row[3]:.0f} conn/s wall)", flush=True)
            for relay, rows in results.items():
                med = [statistics.median(col) for col in zip(*rows)]
                print(f"median {relay:6}: {med[0]:.3f} CPU s/GB, {med[1]:.2f} GB/s, "
                      f"{med[2]:.1f} CPU us/conn, {med[3]:.0f} conn/s")
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
