"""DNS service discovery through c-ares against a real local DNS server (dnsmasq, no network):
A records from a hosts file that dnsmasq re-reads on SIGHUP, and SRV records."""
import shutil
import signal
import socket
import subprocess

import pytest

from support import EchoServer, RawConn, request_bytes, simple_config, stop_process, wait_until

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
pytestmark = pytest.mark.skipif(not shutil.which("dnsmasq") and not
                                __import__("os").path.exists(DNSMASQ),
                                reason="dnsmasq not installed (scripts/bootstrap)")


def free_dns_port():
    """A port free for UDP and for TCP at this moment: dnsmasq binds both."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise AssertionError("no port free for both UDP and TCP")


class Dnsmasq:
    def __init__(self, tmp_path, hosts="", extra=()):
        self.dir = tmp_path / "dns"
        self.dir.mkdir(exist_ok=True)
        self.hosts = self.dir / "hosts"
        self.hosts.write_text(hosts)
        self.port = free_dns_port()
        self.extra = list(extra)
        self.proc = None

    def start(self):
        # Another test may take the port between our probe and dnsmasq's bind: try a new one.
        for attempt in range(5):
            if attempt:
                self.port = free_dns_port()
            if self._launch():
                return self
        raise AssertionError("dnsmasq could not bind: " + (self.dir / "stderr").read_text())

    def _launch(self):
        """Starts dnsmasq on self.port; False when it exited because the port was taken."""
        self.proc = subprocess.Popen(
            [DNSMASQ, "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts",
             f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
             f"--addn-hosts={self.hosts}", f"--pid-file={self.dir / 'pid'}",
             "--user=root", "--group=root", "--local-ttl=0", *self.extra],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "w"))
        # Ready when it answers: a gateway resolving before the bind sees "could not contact".
        query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                 b"\x05probe\x04test\x00\x00\x01\x00\x01")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)

            def answers():
                if self.proc.poll() is not None:
                    return True  # exited: decided below
                s.sendto(query, ("127.0.0.1", self.port))
                try:
                    return s.recv(512)[:2] == b"\x12\x34"
                except (socket.timeout, ConnectionRefusedError):
                    return False
            wait_until(answers, message="dnsmasq answering")
        if self.proc.poll() is None:
            return True
        err = (self.dir / "stderr").read_text()
        assert "Address already in use" in err, err
        return False

    def set_hosts(self, text):
        self.hosts.write_text(text)
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc:
            stop_process(self.proc)


@pytest.fixture
def dns(tmp_path):
    servers = []

    def make(**kw):
        d = Dnsmasq(tmp_path, **kw).start()
        servers.append(d)
        return d
    yield make
    for d in servers:
        d.stop()


@pytest.fixture
def loopback_pair():
    """Two echo servers on one port at 127.0.0.2 and 127.0.0.3 (an A record gives no port)."""
    made = []
    for _ in range(20):
        a = EchoServer("echo-a", host="127.0.0.2").start()
        try:
            b = EchoServer("echo-b", host="127.0.0.3", port=a.port).start()
        except OSError:
            a.stop()
            continue
        made = [a, b]
        break
    assert made, "no port free on both loopback addresses"
    yield made
    for s in made:
        s.stop()


def upstream(gh):
    with RawConn(gh.port) as c:
        c.send(request_bytes("GET", "/"))
        r = c.read_response()
        return r.json()["upstream"] if r.status == 200 else r.status


def test_a_record_re_resolution_picks_up_a_change(gatehouse, dns, loopback_pair):
    a, b = loopback_pair
    d = dns(hosts="127.0.0.2 svc.test\n")
    gh = gatehouse(simple_config({"name": "d", "dns": {
        "name": "svc.test", "type": "A", "port": a.port, "refresh": "200ms",
        "resolvers": [f"127.0.0.1:{d.port}"]}}))
    wait_until(lambda: upstream(gh) == "echo-a", message="first resolution")
    d.set_hosts("127.0.0.3 svc.test\n")
    wait_until(lambda: upstream(gh) == "echo-b", message="re-resolution to the new address")
    # Both addresses: both hosts serve.
    d.set_hosts("127.0.0.2 svc.test\n127.0.0.3 svc.test\n")
    wait_until(lambda: {upstream(gh) for _ in range(6)} == {"echo-a", "echo-b"},
               message="both answers in the host set")
    m = gh.metrics()
    assert m.value("gatehouse_upstream_host_healthy", cluster="d", host=f"127.0.0.2:{a.port}") == 1
    assert m.value("gatehouse_upstream_host_healthy", cluster="d", host=f"127.0.0.3:{a.port}") == 1
    assert m.value("gatehouse_dns_changes_total") >= 3
    # A reload keeps the answers of an unchanged spec: no gap without hosts.
    assert gh.reload() == "success"
    for _ in range(5):
        assert upstream(gh) in ("echo-a", "echo-b")
    assert m.value("gatehouse_upstream_cluster_hosts", cluster="d") == 2
    # A DNS outage keeps the last answers.
    d.stop()
    wait_until(lambda: gh.metrics().value("gatehouse_dns_resolution_failures_total") >= 1,
               message="a failed resolution round")
    for _ in range(5):
        assert upstream(gh) in ("echo-a", "echo-b")


def test_srv_records_give_ports_and_weights(gatehouse, dns, echo, echo2):
    d = dns(hosts="127.0.0.1 node.test\n", extra=[
        f"--srv-host=_http._tcp.svc.test,node.test,{echo.port},0,1",
        f"--srv-host=_http._tcp.svc.test,node.test,{echo2.port},0,1"])
    gh = gatehouse(simple_config({"name": "s", "dns": {
        "name": "_http._tcp.svc.test", "type": "SRV", "refresh": "1s",
        "resolvers": [f"127.0.0.1:{d.port}"]}}), workers=1)
    wait_until(lambda: {upstream(gh) for _ in range(4)} == {"echo-a", "echo-b"},
               message="both SRV targets in the host set")


def test_srv_priorities_become_priority_groups(gatehouse, dns, echo, echo2):
    d = dns(hosts="127.0.0.1 node.test\n", extra=[
        f"--srv-host=_http._tcp.svc.test,node.test,{echo.port},10,1",
        f"--srv-host=_http._tcp.svc.test,node.test,{echo2.port},20,1"])
    gh = gatehouse(simple_config({"name": "s", "dns": {
        "name": "_http._tcp.svc.test", "type": "SRV", "refresh": "1s",
        "resolvers": [f"127.0.0.1:{d.port}"]}}), workers=1)
    wait_until(lambda: upstream(gh) == "echo-a", message="first resolution")
    # Both are in the host set, but the lower SRV priority takes all the traffic.
    wait_until(lambda: gh.metrics().value("gatehouse_upstream_cluster_hosts", cluster="s") == 2,
               message="both SRV targets")
    assert {upstream(gh) for _ in range(10)} == {"echo-a"}


def test_dns_config_errors(tmp_path):
    from support import GATEHOUSE_BIN
    bad = tmp_path / "bad.yaml"
    bad.write_text("""clusters:
  - name: d
    dns: {name: "bad name!", type: MX, resolvers: ["nowhere"]}
routes: [{match: {path_prefix: /}, cluster: d}]
""")
    r = subprocess.run([GATEHOUSE_BIN, "validate", str(bad)], capture_output=True, text=True,
                       timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "clusters[0].dns.name" in out and "clusters[0].dns.type" in out, out
    assert "clusters[0].dns.port" in out and "clusters[0].dns.resolvers[0]" in out, out


def test_resolver_down_at_start_is_retried(gatehouse, tmp_path, echo):
    # The DNS server comes up after the gateway: the next refresh resolves, no restart needed.
    d = Dnsmasq(tmp_path, hosts="127.0.0.1 late.test\n")
    gh = gatehouse(simple_config({"name": "late", "dns": {
        "name": "late.test", "type": "A", "port": echo.port, "refresh": "200ms",
        "resolvers": [f"127.0.0.1:{d.port}"]}}), workers=1)
    assert upstream(gh) == 503  # no hosts yet
    d.start()
    try:
        wait_until(lambda: upstream(gh) == "echo-a", message="resolved once the server is up")
    finally:
        d.stop()


def test_rate_limit_counters_survive_a_dns_change(gatehouse, dns, loopback_pair):
    # A DNS answer that changes rebuilds the snapshot, and with it every policy.
    a, b = loopback_pair
    d = dns(hosts="127.0.0.2 svc.test\n")
    limited = {"name": "limited", "match": {"path_prefix": "/limited"}, "cluster": "d",
               "policies": [{"name": "rate_limit", "config": {"limits": [{"rate": "2/h"}]}}]}
    free = {"name": "free", "match": {"path_prefix": "/"}, "cluster": "d"}
    gh = gatehouse(simple_config({"name": "d", "dns": {
        "name": "svc.test", "type": "A", "port": a.port, "refresh": "200ms",
        "resolvers": [f"127.0.0.1:{d.port}"]}}, routes=[limited, free]))
    wait_until(lambda: upstream(gh) == "echo-a", message="first resolution")

    def limited_status():
        with RawConn(gh.port) as c:
            c.send(request_bytes("GET", "/limited"))
            return c.read_response().status
    assert [limited_status() for _ in range(3)] == [200, 200, 429]
    changes = gh.metrics().value("gatehouse_dns_changes_total")
    d.set_hosts("127.0.0.3 svc.test\n")
    wait_until(lambda: upstream(gh) == "echo-b", message="re-resolution to the new address")
    assert gh.metrics().value("gatehouse_dns_changes_total") > changes
    assert limited_status() == 429
