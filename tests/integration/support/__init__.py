"""Helpers for the Gatehouse integration tests (the fixtures are in ../conftest.py).

  common     constants, free_port(), wait_until(), stop_process(), generated data
  client     RawConn (socket + HTTP/1.1 response reader), request_bytes(), chunked()
  echo       EchoServer: HTTP/1.1 keep-alive upstream answering JSON; x-echo-* behaviours;
             BackgroundHttpServer: base for a test's own small upstream
  recorder   Recorder: raw TCP upstream recording every byte, answering scripted Replies
  gatehouse  Gatehouse: the process under test (config, start, reload, metrics, access log)
  redis      RedisServer: a real redis-server on an ephemeral port (rate_limit mode redis)
"""
from .client import ConnectionClosed, RawConn, Response, chunked, request_bytes
from .common import (GATEHOUSE_BIN, IO_TIMEOUT, REPO, START_TIMEOUT, free_port, gen_blocks,
                     gen_sha256, is_sanitized_binary, stop_process, wait_until)
from .echo import BackgroundHttpServer, EchoHandler, EchoServer
from .gatehouse import Gatehouse, Metrics, cluster, http_get, parse_metrics, simple_config
from .recorder import OK_REPLY, RecordedRequest, Recorder, Reply
from .redis import RedisServer, resp_command

__all__ = [
    "ConnectionClosed", "RawConn", "Response", "chunked", "request_bytes",
    "GATEHOUSE_BIN", "IO_TIMEOUT", "REPO", "START_TIMEOUT", "free_port", "gen_blocks",
    "gen_sha256", "is_sanitized_binary", "stop_process", "wait_until",
    "BackgroundHttpServer", "EchoHandler", "EchoServer",
    "Gatehouse", "Metrics", "cluster", "http_get", "parse_metrics", "simple_config",
    "OK_REPLY", "RecordedRequest", "Recorder", "Reply",
    "RedisServer", "resp_command",
]
