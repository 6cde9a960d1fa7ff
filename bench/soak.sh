#!/usr/bin/env bash
# 30-minute soak (HTTP/1.1, h2c, WebSocket, SSE and gRPC together, a reload every 10 s, an
# upstream killed and restarted every minute); see bench/soak.py for options. Not part of CI.
#   bench/soak.sh [--minutes 30] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 16384 2>/dev/null || true
exec /usr/bin/python3 bench/soak.py "$@"
