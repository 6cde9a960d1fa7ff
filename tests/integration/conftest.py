"""Fixtures for the Gatehouse integration tests (helpers: the support/ package).

Every test gets its own gatehouse process, temp dir and upstreams, all on 127.0.0.1 with
ephemeral ports. Nothing waits with a bare sleep: helpers poll for a condition with a generous
deadline (the suite must pass on a loaded 2-core machine), and every loop is bounded in count
and time. Every process and thread started here is stopped in fixture teardown.

Upstreams:
  EchoServer  - Python ThreadingHTTPServer (HTTP/1.1, keep-alive). Answers JSON describing the
                request; behaviours are driven by x-echo-* request headers (see EchoHandler).
  Recorder    - raw TCP server that stores every byte it receives and replies with scripted raw
                bytes; proves what did (not) reach the upstream and sends malformed responses.
Clients:
  RawConn     - a socket with a read buffer and a strict-enough HTTP/1.1 response reader.
"""
import pytest

from support import OK_REPLY, EchoServer, Gatehouse, Recorder
from support.streams import WsClients, WsEchoServer
from support.tcp import TcpServer


@pytest.fixture
def echo_factory():
    servers = []

    def make(name="echo"):
        s = EchoServer(name).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def echo(echo_factory):
    return echo_factory("echo-a")


@pytest.fixture
def echo2(echo_factory):
    return echo_factory("echo-b")


@pytest.fixture
def tcp_server():
    """Factory: tcp_server(handler) -> a started raw TCP upstream (support/tcp.py)."""
    servers = []

    def make(handler):
        s = TcpServer(handler).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def recorder_factory():
    recs = []

    def make(script=None, default=OK_REPLY):
        r = Recorder(script, default).start()
        recs.append(r)
        return r
    yield make
    for r in recs:
        r.stop()


@pytest.fixture
def recorder(recorder_factory):
    return recorder_factory()


@pytest.fixture
def gatehouse(tmp_path):
    """Factory: gatehouse(config_dict, workers=2, extra_args=()) -> a started Gatehouse; stopped
    at teardown."""
    started = []

    def make(config, workers=2, name=None, extra_args=()):
        g = Gatehouse(tmp_path, config, workers=workers, name=name or f"gh{len(started)}",
                      extra_args=extra_args)
        started.append(g)
        return g.start()
    yield make
    for g in started:
        rc = g.stop()
        err = g.stderr()
        # Shown by pytest only when the test fails.
        print(f"--- gatehouse {g.dir.name} exit={rc} stderr (tail) ---\n{err[-3000:]}")
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in err, f"sanitizer report in gatehouse stderr:\n{err[-6000:]}"
        # SIGTERM must drain and exit 0; a crash, a sanitizer abort or a hang (SIGKILL) fails.
        assert rc == 0, f"gatehouse exited with {rc}; stderr:\n{err[-3000:]}"


@pytest.fixture
def ws_upstream():
    s = WsEchoServer()
    yield s
    s.close()


@pytest.fixture
def clients():
    c = WsClients()
    yield c
    c.close()
