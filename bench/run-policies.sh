#!/usr/bin/env bash
# What policies and algorithms cost: Gatehouse plain next to Gatehouse with API-key auth, JWT
# RS256 / ES256 (warm verified-token cache), local / Redis / hybrid rate limits, a realistic
# Lua policy (read a header, look it up in the worker's dictionary, set two headers), the WAF
# (ModSecurity + OWASP CRS) at paranoia levels 1 and 2, and the
# least_time and maglev balancers, in one interleaved run of the shared harness (1 KiB, 50
# connections by default). NGINX is the reference. Not part of CI (~10 minutes).
#   bench/run-policies.sh
#   REPS=5 SCENARIOS="1k-c50 1k-c1000" bench/run-policies.sh
#   ONLY="leasttime maglev" REPS=5 bench/run-policies.sh    (the balancer row only)
#   ONLY="lua lua-base" REPS=5 bench/run-policies.sh        (the Lua script's cost)
#   ONLY="waf-pl1 waf-pl2" REPS=5 bench/run-policies.sh     (the WAF at paranoia levels 1 and 2)
# wrk sends no credentials, so a `headers` policy first in the chain sets them: the measured
# cost is the auth check itself, as for a client that always sends the same key or token.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HARNESS="${GATEHOUSE_BENCH_HARNESS:-$ROOT/../shared/bench}"
[ -x "$HARNESS/run.sh" ] || { echo "bench harness not found at $HARNESS" >&2; exit 1; }
GATEHOUSE_BENCH_DEPS=1 scripts/bootstrap
scripts/build release gatehouse
BIN="$ROOT/build/release/gatehouse"
WORK=$(mktemp -d)
REDIS_PID=
cleanup() {
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

REDIS_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

# Keys and tokens for the auth cases.
/usr/bin/python3 - "$WORK" <<'EOF'
import hashlib, json, sys, time
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
d = sys.argv[1]
out = {"api_key": "bench-key-0123456789", "api_key_sha256": hashlib.sha256(b"bench-key-0123456789").hexdigest()}
claims = {"sub": "bench", "exp": int(time.time()) + 86400, "iat": int(time.time())}
for name, key, alg in (("rs256", rsa.generate_private_key(65537, 2048), "RS256"),
                       ("es256", ec.generate_private_key(ec.SECP256R1()), "ES256")):
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    out[name + "_pem"] = pem
    out[name + "_token"] = jwt.encode(claims, key, algorithm=alg, headers={"kid": name})
json.dump(out, open(f"{d}/secrets.json", "w"))
EOF

# Variant configs: the base bench config plus one policy list or balancer.
/usr/bin/python3 - "$WORK" "$ROOT/bench/gatehouse-h1.yaml" "$REDIS_PORT" <<'EOF'
import json, sys
import yaml
d, base_path, redis_port = sys.argv[1], sys.argv[2], sys.argv[3]
# Issue 19's realistic script (one header read, one dictionary lookup, two headers set), the
# same file bench/callgrind.sh runs.
LUA_SCRIPT = open(base_path.rsplit("/", 1)[0] + "/lua-realistic.lua").read()
base = yaml.safe_load(open(base_path))
s = json.load(open(f"{d}/secrets.json"))
def set_header(name, value):
    return {"name": "headers", "config": {"request": {"set": {name: value}}}}
def limit(mode, extra=None):
    cfg = {"name": f"bench-{mode}", "mode": mode, "key": "route",
           "limits": [{"rate": "100000000/s", "burst": 100000000}]}
    if mode != "local":
        cfg["redis"] = {"address": f"127.0.0.1:{redis_port}", "timeout": "200ms"}
    if extra:
        cfg.update(extra)
    return {"name": "rate_limit", "config": cfg}
variants = {
    "keyauth": [set_header("x-api-key", s["api_key"]),
                {"name": "key_auth", "config": {"consumers": [
                    {"name": "bench", "keys": [{"sha256": s["api_key_sha256"]}]}]}}],
    "jwt-rs256": [set_header("authorization", "Bearer " + s["rs256_token"]),
                  {"name": "jwt_auth", "config": {"keys": [
                      {"kid": "rs256", "alg": "RS256", "pem": s["rs256_pem"]}]}}],
    "jwt-es256": [set_header("authorization", "Bearer " + s["es256_token"]),
                  {"name": "jwt_auth", "config": {"keys": [
                      {"kid": "es256", "alg": "ES256", "pem": s["es256_pem"]}]}}],
    "rl-local": [limit("local")],
    "rl-redis": [limit("redis")],
    "rl-hybrid": [limit("hybrid", {"hybrid": {"batch": 1000, "batch_ttl": "1s"}})],
    "lua": [set_header("x-tenant", "acme"),
            {"name": "lua", "config": {"name": "bench", "source": LUA_SCRIPT}}],
    # The lua case without the script: lua - lua-base is what the script costs.
    "lua-base": [set_header("x-tenant", "acme")],
    # ModSecurity + the OWASP CRS on a clean request (bench/waf-cost.sh also measures attacks).
    "waf-pl1": [{"name": "waf", "config": {"paranoia_level": 1}}],
    "waf-pl2": [{"name": "waf", "config": {"paranoia_level": 2}}],
}
for name, policies in variants.items():
    c = json.loads(json.dumps(base))
    c["routes"][0]["policies"] = policies
    json.dump(c, open(f"{d}/gh-{name}.yaml", "w"))
for lb in ("least_time", "maglev"):
    c = json.loads(json.dumps(base))
    c["clusters"][0]["lb"] = lb
    json.dump(c, open(f"{d}/gh-{lb.replace('_', '')}.yaml", "w"))
EOF
for f in "$WORK"/gh-*.yaml; do "$BIN" validate "$f" >/dev/null; done

export EXTRA_H1_gatehouse="$BIN run -c $ROOT/bench/gatehouse-h1.yaml"
CASES="nginx-ka1024 gatehouse"
for f in "$WORK"/gh-*.yaml; do
  case=$(basename "$f" .yaml)
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" ${case#gh-} "* ]]; then continue; fi
  export "EXTRA_H1_${case//-/_}=$BIN run -c $f"
  CASES="$CASES $case"
done
export CASES
export SCENARIOS="${SCENARIOS:-1k-c50}"
export REPS="${REPS:-3}"
export OUT="${OUT:-$ROOT/bench/results/policies-$(date +%Y%m%d-%H%M%S)}"
"$HARNESS/run.sh"
cat "$OUT/summary.md"
