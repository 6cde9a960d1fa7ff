"""UDP upstreams and clients for the UDP listener tests and bench/l4_udp.py.

  DnsServer     - a real dnsmasq on an ephemeral port answering A records for *.x.test (no system
                  config, no upstream resolvers); started and stopped by PID.
  UdpEchoServer - a thread answering each datagram with `replies` datagrams
                  b"<name>:<i>:<payload>", counting what it received.
  dns_query()   - a hand-built A query; dns_answer() reads the first A record of a reply.
"""
from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading

from .common import IO_TIMEOUT, free_port, stop_process, wait_until

DNSMASQ = shutil.which("dnsmasq") or (shutil.which("/usr/sbin/dnsmasq"))


def dns_query(name: str, qid: int = 0x4748) -> bytes:
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD, one question
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + qname + struct.pack(">HH", 1, 1)  # A, IN


def dns_answer(reply: bytes) -> str | None:
    """The first A record of a reply (dnsmasq puts it last: a 4-byte RDATA at the end)."""
    qid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", reply[:12])
    if an == 0 or reply[-6:-4] != b"\x00\x04":
        return None
    return socket.inet_ntoa(reply[-4:])


def ask(port: int, name: str, sock: socket.socket | None = None, timeout=IO_TIMEOUT) -> str | None:
    """One query through 127.0.0.1:port from `sock` (or a new socket); the A record."""
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        q = dns_query(name)
        s.sendto(q, ("127.0.0.1", port))
        reply, _ = s.recvfrom(4096)
        assert reply[:2] == q[:2], "reply to another query"
        return dns_answer(reply)
    finally:
        if own:
            s.close()


class DnsServer:
    """dnsmasq answering every name under x.test with `address` (UDP and TCP on one port)."""

    def __init__(self, address: str):
        self.address = address
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> "DnsServer":
        assert DNSMASQ, "dnsmasq is not installed (scripts/bootstrap installs dnsmasq-base)"
        self.port = free_port()
        self.proc = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", f"--port={self.port}",
             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
             "--pid-file=", "--user=", "--cache-size=0", f"--address=/x.test/{self.address}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._answers(), message=f"dnsmasq on {self.port}")
        return self

    def _answers(self) -> bool:
        assert self.proc.poll() is None, "dnsmasq exited"
        try:
            return ask(self.port, "probe.x.test", timeout=0.2) == self.address
        except OSError:
            return False

    def stop(self):
        if self.proc:
            stop_process(self.proc)


class UdpEchoServer:
    """Answers each datagram with `replies` datagrams b"<name>:<i>:<payload>"."""

    def __init__(self, name: str, replies: int = 1):
        self.name = name.encode()
        self.replies = replies
        self.received = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "UdpEchoServer":
        self._thread.start()
        return self

    def _run(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received += 1
            for i in range(self.replies):
                try:
                    self.sock.sendto(b"%s:%d:%s" % (self.name, i, data), peer)
                except OSError:
                    pass

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
