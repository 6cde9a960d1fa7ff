"""WebSocket (HTTP/1.1 Upgrade) tunnels: per-route idle timeout, maximum lifetime and a cap on
concurrent tunnels across workers, with their metrics (issue #6, item 5)."""
import time

import pytest
import websockets

from support import IO_TIMEOUT, simple_config, wait_until


def ws_config(up, websocket=None, **extra):
    route = {"name": "ws", "match": {"path_prefix": "/"}, "cluster": "ws"}
    if websocket is not None:
        route["websocket"] = websocket
    extra.setdefault("access_log", {"fields": ["path", "status", "route", "error"]})
    return simple_config({"name": "ws", "endpoints": [up.endpoint]}, routes=[route], **extra)


def active(gh):
    return gh.metrics().value("gatehouse_websockets_active", route="ws")


def test_echo_and_active_gauge(gatehouse, ws_upstream, clients):
    gh = gatehouse(ws_config(ws_upstream))
    ws = clients.open(f"ws://127.0.0.1:{gh.port}/chat")
    assert clients.echo(ws, "hello") == "hello"
    assert active(gh) == 1
    clients.close_one(ws)
    wait_until(lambda: active(gh) == 0, message="websockets_active back to 0")
    m = gh.metrics()
    assert m.value("gatehouse_websocket_closes_total", route="ws", reason="closed") == 1


def test_max_connections_caps_tunnels_across_workers(gatehouse, ws_upstream, clients):
    gh = gatehouse(ws_config(ws_upstream, websocket={"max_connections": 3}), workers=2)
    conns = [clients.open(f"ws://127.0.0.1:{gh.port}/c{i}") for i in range(3)]
    for i, ws in enumerate(conns):
        assert clients.echo(ws, f"m{i}") == f"m{i}"
    # Several attempts: with two workers, some land on each; every one must be refused.
    for _ in range(4):
        with pytest.raises(websockets.InvalidStatusCode) as e:
            clients.open(f"ws://127.0.0.1:{gh.port}/over")
        assert e.value.status_code == 503
    m = gh.metrics()
    assert m.value("gatehouse_websocket_rejected_total", route="ws") == 4
    assert active(gh) == 3
    # A slot freed is a slot available again.
    clients.close_one(conns[0])
    wait_until(lambda: active(gh) == 2, message="websockets_active to drop to 2")
    ws = clients.open(f"ws://127.0.0.1:{gh.port}/again")
    assert clients.echo(ws, "again") == "again"
    wait_until(lambda: "websocket limit reached" in [r.get("error") for r in gh.access_log()],
               message="the refusal in the access log")


def test_idle_timeout_closes_a_silent_tunnel(gatehouse, ws_upstream, clients):
    gh = gatehouse(ws_config(ws_upstream, websocket={"idle_timeout": "300ms"}))
    ws = clients.open(f"ws://127.0.0.1:{gh.port}/idle")
    assert clients.echo(ws, "x") == "x"
    t0 = time.monotonic()
    clients.wait_closed(ws, IO_TIMEOUT * 2)
    assert time.monotonic() - t0 >= 0.25  # lower bound only: the machine may be slow
    m = wait_until(lambda: (lambda m: m if m.get_value(
        "gatehouse_websocket_closes_total", route="ws", reason="idle_timeout") else None)(
            gh.metrics()), message="idle close counted")
    assert m.value("gatehouse_timeouts_total", reason="websocket_idle") >= 1
    assert active(gh) == 0
    wait_until(lambda: "websocket closed: idle_timeout" in [r.get("error")
                                                            for r in gh.access_log()],
               message="the idle close in the access log")


def test_traffic_in_either_direction_keeps_the_tunnel_open(gatehouse, ws_upstream, clients):
    gh = gatehouse(ws_config(ws_upstream, websocket={"idle_timeout": "2s"}))
    ws = clients.open(f"ws://127.0.0.1:{gh.port}/busy")
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 4.5:  # more than twice the idle timeout
        assert clients.echo(ws, f"m{n}") == f"m{n}"
        n += 1
        time.sleep(0.1)
    assert gh.metrics().get_value("gatehouse_websocket_closes_total", route="ws",
                                  reason="idle_timeout") is None


def test_max_lifetime_closes_a_busy_tunnel(gatehouse, ws_upstream, clients):
    gh = gatehouse(ws_config(ws_upstream, websocket={"max_lifetime": "700ms",
                                                     "idle_timeout": 0}))
    ws = clients.open(f"ws://127.0.0.1:{gh.port}/life")
    t0 = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed):
        for i in range(10000):
            clients.echo(ws, f"m{i}")
            time.sleep(0.05)
    assert time.monotonic() - t0 >= 0.6
    wait_until(lambda: gh.metrics().get_value("gatehouse_websocket_closes_total", route="ws",
                                              reason="max_lifetime") == 1,
               message="lifetime close counted")
    assert gh.metrics().value("gatehouse_timeouts_total", reason="websocket_lifetime") >= 1


def test_global_websocket_defaults_apply(gatehouse, ws_upstream, clients):
    gh = gatehouse(ws_config(ws_upstream, timeouts={"websocket_idle": "300ms"}))
    ws = clients.open(f"ws://127.0.0.1:{gh.port}/g")
    assert clients.echo(ws, "x") == "x"
    clients.wait_closed(ws, IO_TIMEOUT * 2)
    wait_until(lambda: gh.metrics().get_value("gatehouse_timeouts_total",
                                              reason="websocket_idle") == 1,
               message="websocket_idle counted")


def test_bad_websocket_options_are_rejected(gatehouse, ws_upstream, tmp_path):
    import subprocess
    import json
    from support import GATEHOUSE_BIN
    cfg = ws_config(ws_upstream, websocket={"max_connections": -1, "idel_timeout": "1s"})
    p = tmp_path / "bad.yaml"
    p.write_text(json.dumps(cfg))
    r = subprocess.run([GATEHOUSE_BIN, "validate", str(p)], capture_output=True, text=True,
                       timeout=IO_TIMEOUT * 2)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "routes[0].websocket.max_connections" in out
    assert "idel_timeout" in out


def client_frame(text):
    """A masked WebSocket text frame (RFC 6455 §5.2), as a client must send it."""
    payload = text.encode()
    mask = b"\x01\x02\x03\x04"
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


def extended_connect(gh, path="/chat"):
    from test_http2 import H2Conn
    c = H2Conn(gh.port)
    c.conn.config.validate_outbound_headers = False  # :protocol (RFC 8441)
    # SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8) = 1 in the server's SETTINGS.
    c.pump(lambda: c.conn.remote_settings.get(8) == 1, timeout=IO_TIMEOUT)
    sid = c.request("CONNECT", path, headers=[(":protocol", "websocket"),
                                              ("sec-websocket-version", "13")], end=False)
    c.pump(lambda: c._resp(sid)["status"] is not None or c._resp(sid)["reset"] is not None)
    return c, sid


def test_websocket_over_http2_extended_connect(gatehouse, ws_upstream):
    gh = gatehouse(ws_config(ws_upstream, websocket={"idle_timeout": "600ms"},
                             http2={"enable_connect_protocol": True}))
    c, sid = extended_connect(gh)
    try:
        r = c._resp(sid)
        assert r["status"] == 200 and "sec-websocket-accept" not in r["headers"]
        for word in ("hello", "again"):
            before = len(r["body"])
            c.send_body(sid, client_frame(word), end=False)
            c.pump(lambda: len(r["body"]) >= before + 2 + len(word))
            assert bytes(r["body"][before:]) == bytes([0x81, len(word)]) + word.encode()
        assert active(gh) == 1
        # Silence: the route's idle timeout resets the stream (the connection stays up).
        t0 = time.monotonic()
        c.pump(lambda: r["reset"] is not None or r["ended"])
        assert time.monotonic() - t0 >= 0.5
        wait_until(lambda: gh.metrics().get_value("gatehouse_websocket_closes_total", route="ws",
                                                  reason="idle_timeout") == 1,
                   message="idle close over h2 counted")
        assert active(gh) == 0
    finally:
        c.close()


def test_extended_connect_is_off_by_default(gatehouse, ws_upstream):
    from test_http2 import H2Conn
    gh = gatehouse(ws_config(ws_upstream))
    c = H2Conn(gh.port)
    try:
        sid = c.request("GET", "/x", headers=[])
        c.response(sid)
        assert c.conn.remote_settings.get(8) in (None, 0)
    finally:
        c.close()
