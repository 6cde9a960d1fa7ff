"""Small things operators expect (issue 16, item 6): --help / help CMD / the man page / bash
completion from one table, sd_notify under a Type=notify supervisor, `validate --diff-with` a
running gateway, and the systemd unit."""
import json
import os
import shutil
import signal
import socket
import subprocess
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from support import GATEHOUSE_BIN, BackgroundHttpServer, cluster
from support.common import IO_TIMEOUT, REPO


def gh(*args, **kw):
    return subprocess.run([GATEHOUSE_BIN, *args], capture_output=True, text=True, timeout=60,
                          **kw)


def test_help_lists_commands_and_describes_one():
    p = gh("--help")
    assert p.returncode == 0
    for name in ("run", "validate", "explain", "demo", "lua-test", "version", "help",
                 "completion"):
        assert f"\n  {name} " in p.stdout, p.stdout
    p = gh("help", "explain")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: gatehouse explain -c FILE")
    assert "--client-ip IP" in p.stdout
    # `CMD --help` is the same text; a bad command is a usage error on stderr.
    assert gh("explain", "--help").stdout == p.stdout
    assert gh("validate", "--help").stdout == gh("help", "validate").stdout
    bad = gh("help", "nope")
    assert bad.returncode == 2 and "unknown command 'nope'" in bad.stderr
    assert gh("frobnicate").returncode == 2


def test_man_page_is_generated_by_the_build_and_renders():
    built = Path(GATEHOUSE_BIN).parent / "gatehouse.1"
    assert built.exists(), "the build writes gatehouse.1 next to the binary"
    assert built.read_text() == gh("help", "--man").stdout
    assert built.read_text().startswith(".TH GATEHOUSE 1")
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(built)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_bash_completion_completes_commands_and_flags(tmp_path):
    script = gh("completion", "bash").stdout
    assert (Path(GATEHOUSE_BIN).parent / "gatehouse.bash").read_text() == script
    path = tmp_path / "gatehouse.bash"
    path.write_text(script)

    def complete(*words):
        line = " ".join(["gatehouse", *words])
        prog = (f"source {path}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; "
                "_gatehouse; printf '%s\\n' \"${COMPREPLY[@]}\"")
        r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return set(r.stdout.split())
    assert {"explain", "validate", "run"} <= complete("")
    assert complete("ex") == {"explain"}
    assert "--client-ip" in complete("explain", "--cl")
    assert complete("validate", "--di") == {"--diff-with"}
    assert complete("run", "--log-level", "") == {"debug", "info", "warn", "error"}
    assert gh("completion", "zsh").returncode == 2


def test_sd_notify_ready_reloading_stopping(gatehouse, echo, tmp_path, monkeypatch):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(IO_TIMEOUT)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    try:
        g = gatehouse({"clusters": [cluster("svc", echo)]})

        def next_message():
            return sock.recv(4096).decode()
        ready = next_message()
        assert "READY=1" in ready.splitlines(), ready
        assert f"MAINPID={g.pid}" in ready.splitlines(), ready
        # By READY=1 the listener is bound: a connection succeeds at once.
        socket.create_connection(("127.0.0.1", g.port), timeout=5).close()

        g.signal(signal.SIGHUP)
        reloading = next_message().splitlines()
        assert "RELOADING=1" in reloading, reloading
        usec = [ln for ln in reloading if ln.startswith("MONOTONIC_USEC=")]
        assert usec and int(usec[0].split("=", 1)[1]) > 0, reloading
        assert "READY=1" in next_message().splitlines()

        # A rejected reload still ends in READY=1: the old config keeps serving.
        g.write_config(raw="listeners: [\n")
        g.signal(signal.SIGHUP)
        assert "RELOADING=1" in next_message().splitlines()
        assert "READY=1" in next_message().splitlines()
        g.write_config()

        g.signal(signal.SIGTERM)
        assert "STOPPING=1" in next_message().splitlines()
    finally:
        sock.close()


def test_validate_diff_with_a_running_gateway(gatehouse, echo, echo2, tmp_path):
    config = {"clusters": [cluster("svc", echo, lb="round_robin")],
              "routes": [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "svc"}]}
    g = gatehouse(config)
    running = json.loads(g.config_path.read_text())

    same = tmp_path / "same.yaml"
    same.write_text(json.dumps(running))
    p = gh("validate", str(same), "--diff-with", g.admin_url)
    assert p.returncode == 0, p.stderr
    assert "none: the file is what the gateway runs" in p.stdout, p.stdout

    changed = json.loads(json.dumps(running))
    changed["clusters"][0]["lb"] = "least_conn"
    changed["clusters"].append({"name": "new", "endpoints": [echo2.endpoint]})
    changed["routes"].insert(0, {"name": "new-route", "match": {"path_prefix": "/new"},
                                 "cluster": "new"})
    changed["timeouts"] = {"drain": "5s"}
    path = tmp_path / "changed.yaml"
    path.write_text(json.dumps(changed))
    p = gh("validate", str(path), "--diff-with", g.admin_url)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert f"{path}: ok (2 routes, 2 clusters)" == lines[0]
    # The versioned API answers first; GET /config is the fallback for older gateways.
    assert lines[1].startswith(f"changes from {g.admin_url}/api/v1/config (generation 1")
    assert '~ clusters[svc].lb: "round_robin" -> "least_conn"' in lines
    assert any(ln.startswith("+ clusters[new]: ") for ln in lines), lines
    assert any(ln.startswith("+ routes[new-route]: ") for ln in lines), lines
    assert '+ timeouts: {"drain":"5s"}' in lines
    assert lines[-1] == "4 change(s)"

    # An invalid file is not diffed; an unreachable admin API is an error.
    bad = tmp_path / "bad.yaml"
    bad.write_text("listeners: nope\n")
    p = gh("validate", str(bad), "--diff-with", g.admin_url)
    assert p.returncode == 1 and "bad.yaml" in p.stderr
    p = gh("validate", str(same), "--diff-with", "http://127.0.0.1:1")
    assert p.returncode == 1 and "cannot connect" in p.stderr


def test_systemd_unit_is_type_notify_with_reload_and_hardening(tmp_path):
    unit = (REPO / "packaging" / "gatehouse.service").read_text()
    settings = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    assert settings["Type"] == ["notify"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "RestrictAddressFamilies", "SystemCallFilter"):
        assert key in settings, key
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # Verify a copy that runs this build's binary (the unit names /usr/bin/gatehouse).
    copy = tmp_path / "gatehouse.service"
    copy.write_text(unit.replace("/usr/bin/gatehouse", GATEHOUSE_BIN))
    r = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [ln for ln in r.stderr.splitlines()
                if "gatehouse.service" in ln and "Unknown" in ln or "Failed to parse" in ln]
    assert not problems, r.stderr


def test_cli_reference_is_generated_from_the_binary(tmp_path):
    """docs/cli.md is scripts/gen-cli-doc's output: run it again and compare."""
    doc = REPO / "docs" / "cli.md"
    before = doc.read_text()
    work = tmp_path / "repo"
    (work / "scripts").mkdir(parents=True)
    (work / "docs").mkdir()
    shutil.copy(REPO / "scripts" / "gen-cli-doc", work / "scripts" / "gen-cli-doc")
    r = subprocess.run([str(work / "scripts" / "gen-cli-doc"), GATEHOUSE_BIN],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (work / "docs" / "cli.md").read_text() == before, \
        "docs/cli.md is stale: run scripts/gen-cli-doc"


class _VersionedAdmin(BaseHTTPRequestHandler):
    """An admin API with /api/v1/config (as the versioned API serves it) and no /config."""
    protocol_version = "HTTP/1.1"
    reply: dict = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/api/v1/config" and self.headers.get("authorization") == "Bearer t0k":
            body, status = json.dumps(self.reply).encode(), 200
        elif self.path == "/api/v1/config":
            body, status = b'{"error": "unauthorized"}', 401
        else:
            body, status = b"not found\n", 404
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("shape", ["yaml", "typed_tree"])
def test_validate_diff_with_the_versioned_admin_api(tmp_path, shape, monkeypatch):
    running = {"clusters": [{"name": "svc", "endpoints": ["127.0.0.1:9001"],
                             "connect_timeout": "1s"}],
               "routes": [{"name": "all", "cluster": "svc"}],
               "admin": {"port": 9901}}
    if shape == "yaml":
        reply = {"generation": 7, "source": "/etc/gh.yaml", "yaml": json.dumps(running)}
    else:  # a server that converted scalars to numbers: 9901 must still equal "9901"
        reply = {"generation": 7, "source": "/etc/gh.yaml", "config": running}
    handler = type("H", (_VersionedAdmin,), {"reply": reply})
    server = BackgroundHttpServer(handler)
    try:
        changed = json.loads(json.dumps(running))
        changed["clusters"][0]["connect_timeout"] = "2s"
        path = tmp_path / "gh.yaml"
        path.write_text(json.dumps(changed))
        url = f"http://{server.endpoint}"
        p = gh("validate", str(path), "--diff-with", url)
        assert p.returncode == 1 and "--token" in p.stderr, p.stderr
        monkeypatch.setenv("GATEHOUSE_ADMIN_TOKEN", "t0k")
        p = gh("validate", str(path), "--diff-with", url)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[1] == (f"changes from {url}/api/v1/config (generation 7, /etc/gh.yaml) "
                            f"to {path}:"), lines
        assert lines[2:] == ['~ clusters[svc].connect_timeout: "1s" -> "2s"', "1 change(s)"]
    finally:
        server.stop()
