"""An authentication policy in front of a WebSocket route (issue #12, item 7): an upgrade the
policy rejects is answered 401 by the gateway and never reaches the upstream; with a valid
credential the tunnel is opened and carries messages."""
import hashlib

import pytest
import websockets

from support import simple_config, wait_until

KEY = "ws-client-key-1"


def test_rejected_upgrade_is_never_tunnelled(gatehouse, ws_upstream, clients):
    auth = {"name": "key_auth", "config": {"consumers": [
        {"name": "alice", "keys": [{"sha256": hashlib.sha256(KEY.encode()).hexdigest()}]}]}}
    route = {"name": "ws", "match": {"path_prefix": "/"}, "cluster": "ws", "policies": [auth]}
    gh = gatehouse(simple_config({"name": "ws", "endpoints": [ws_upstream.endpoint]},
                                 routes=[route]), workers=2)
    url = f"ws://127.0.0.1:{gh.port}/chat"
    # Several attempts, so that both workers refuse some; a wrong key as well as none.
    for key in (None, "wrong", None, "wrong"):
        headers = {"x-api-key": key} if key else {}
        with pytest.raises(websockets.InvalidStatusCode) as e:
            clients.open(url, extra_headers=headers)
        assert e.value.status_code == 401
    assert ws_upstream.handshakes == 0
    m = gh.metrics()
    assert m.value("gatehouse_auth_rejections_total", policy="key_auth", reason="missing") == 2
    assert m.value("gatehouse_auth_rejections_total", policy="key_auth",
                   reason="bad_credentials") == 2
    assert m.get_value("gatehouse_websockets_active", route="ws") in (None, 0)

    ws = clients.open(url, extra_headers={"x-api-key": KEY})
    assert clients.echo(ws, "hello") == "hello"
    assert ws_upstream.handshakes == 1
    wait_until(lambda: gh.metrics().value("gatehouse_websockets_active", route="ws") == 1,
               message="the one tunnel counted as active")
