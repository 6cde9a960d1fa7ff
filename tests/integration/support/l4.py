"""Configs for the L4 listener tests (test_l4_tcp.py, test_l4_udp.py).

  l4_config()  - an HTTP main listener (the launcher's readiness probe) and one TCP or UDP
                 listener forwarding to a cluster
  tcp_config() - l4_config for a TCP listener 'tcp'; tcp_port(g) its port
  endpoints()  - 127.0.0.1 endpoints for a cluster
"""
from __future__ import annotations


def l4_config(mode: str, cluster: dict, options: dict | None = None, **extra) -> dict:
    """An HTTP main listener (the launcher's readiness probe) plus a listener named `mode`
    (port "@<mode>") with `mode: <mode>` forwarding to `cluster`."""
    block = {"cluster": cluster["name"]}
    block.update(options or {})
    c = {
        "clusters": [cluster],
        "listeners": [
            {"name": "main", "address": "127.0.0.1", "port": "@main"},
            {"name": mode, "address": "127.0.0.1", "port": f"@{mode}", "mode": mode, mode: block},
        ],
    }
    c.update(extra)
    return c


def tcp_config(cluster: dict, tcp: dict | None = None, **extra) -> dict:
    """l4_config for a TCP listener named 'tcp' (port "@tcp")."""
    return l4_config("tcp", cluster, tcp, **extra)


def tcp_port(g) -> int:
    return g.extra_port("tcp")


def endpoints(*ports) -> list[dict]:
    return [{"host": "127.0.0.1", "port": p} for p in ports]
