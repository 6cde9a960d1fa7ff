#!/bin/sh
# TCP listener relay cost, splice() against read()/write(): see bench/l4_tcp.py.
# Usage: bench/l4_tcp.sh [ROUNDS] [GB_PER_ROUND] [CONNS]
exec /usr/bin/python3 "$(dirname "$0")/l4_tcp.py" "$@"
