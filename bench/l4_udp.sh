#!/bin/sh
# UDP listener request/response rate and CPU per exchange: see bench/l4_udp.py.
# Usage: [PEERS=1] [ROUNDS=3] bench/l4_udp.sh [SECONDS] [SOCKETS] [WINDOW]   (PEERS=1: NGINX stream beside it)
exec /usr/bin/python3 "$(dirname "$0")/l4_udp.py" "$@"
