#!/bin/sh
# UDP listener request/response rate and CPU per exchange: see bench/l4_udp.py.
# Usage: bench/l4_udp.sh [SECONDS] [SOCKETS] [WINDOW]
exec /usr/bin/python3 "$(dirname "$0")/l4_udp.py" "$@"
