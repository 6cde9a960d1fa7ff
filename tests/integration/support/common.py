"""Constants and small helpers: ports, bounded polling, process stopping, generated data."""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[3]
GATEHOUSE_BIN = os.environ.get("GATEHOUSE_BIN") or str(REPO / "build" / "release" / "gatehouse")

# Generous deadlines: the machine is shared and may be an ASan build.
START_TIMEOUT = 20.0
IO_TIMEOUT = 15.0


_recent_ports: list[int] = []


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind port 0, read it back, close).

    The kernel may hand the same port out twice in a row once it is released, so
    a port given out recently by this process is skipped (bounded retries)."""
    port = 0
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _recent_ports:
            break
    _recent_ports.append(port)
    del _recent_ports[:-512]
    return port


def wait_until(cond, timeout=IO_TIMEOUT, interval=0.02, message="condition"):
    """Polls cond() until it returns a truthy value; returns it. Bounded in time and count."""
    deadline = time.monotonic() + timeout
    max_polls = int(timeout / interval) + 10
    last_exc = None
    for _ in range(max_polls):
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported below if the deadline passes
            last_exc = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM, timeout=20.0) -> int | None:
    """Stops one process by PID: sig, wait, then SIGKILL. Returns the exit code."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10)
    except ProcessLookupError:
        return proc.wait(timeout=10)


def is_sanitized_binary(path=GATEHOUSE_BIN) -> bool:
    """True for ASan/UBSan builds (their RSS and speed are not comparable)."""
    return _sanitized_cache.setdefault(path, _probe_sanitized(path))


_sanitized_cache: dict[str, bool] = {}


def _probe_sanitized(path) -> bool:
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                if b"AddressSanitizer" in block or b"__asan_init" in block:
                    return True
    except OSError:
        pass
    return False


# Deterministic generated data: every 64 KiB block starts with its index, so reordered or
# dropped blocks change the hash. Memory stays at one block whatever the total size.
_BLOCK = 65536
_BASE = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(_BLOCK // 32))


def gen_blocks(total: int):
    """Yields `total` bytes of generated data in blocks of at most 64 KiB."""
    k = 0
    sent = 0
    while sent < total:
        n = min(_BLOCK, total - sent)
        block = (k.to_bytes(8, "big") * 2 + _BASE[16:])[:n]
        yield block
        sent += n
        k += 1


def gen_sha256(total: int) -> str:
    h = hashlib.sha256()
    for b in gen_blocks(total):
        h.update(b)
    return h.hexdigest()
