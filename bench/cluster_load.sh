#!/usr/bin/env bash
# The cluster under load (docs/PERFORMANCE.md, "Cluster under load"; docs/SIZING.md): the
# two-instance deployment of tests/all/cluster.rs — the simulator, one real redis-server, two
# `serve` instances sharing it, nginx with TLS and HTTP/2 from the very template in
# deploy/nginx/ — driven by bench/loadgen.rs through nginx at a fixed concurrency, side by side
# with ONE instance behind a second nginx built from the same template (both upstream lines point
# at instance A). The two setups alternate, request kind by request kind, in the same run. Each
# row also gives the Redis commands per request (`INFO commandstats`, summed over commands
# except INFO, over the measured window, divided by the requests answered in it) and the CPU
# time a request costs Redis (`INFO cpu`) and the instances (/proc/PID/stat).
#
# Then the sizing step: SIZING_USERS distinct callers (one simulator key each) each log in once
# with a bearer token, once with a browser session, and (the first GRANTS of them) complete the
# OAuth flow once (registration, consent, code exchange with PKCE) and refresh once, all through
# nginx but the registration (see oauth_grant); after each step the bytes Redis holds per key
# family (`MEMORY USAGE` of every key) and `used_memory` are compared with the step before. The
# figures are the ones of docs/SIZING.md.
#
#   bench/cluster_load.sh                          # 60 s per measurement, c=16
#   DURATION=10 SIZING_USERS=100 GRANTS=20 bench/cluster_load.sh   # a quick check
#
# Settings: DURATION (measured s, 60), WARMUP (s, 5), CONC (closed-loop workers, 16), PRINCIPALS
# (callers the load is spread over, as in bench/run.sh; 4), ROUNDS (times the whole alternation
# is repeated, 1), SIZING_USERS (1000; 0 skips sizing), GRANTS (OAuth grants, 200), BUILD (0: use
# the binaries as they are), OUT (target/cluster-load).
#
# Needs redis-server, redis-cli, nginx, openssl, curl, jq and python3. Ports are chosen free;
# everything it starts is stopped on exit. Bounded: about 4 × ROUNDS × (DURATION + WARMUP + 2) s
# of load, then the sizing (about a minute for the defaults).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-60}
WARMUP=${WARMUP:-5}
CONC=${CONC:-16}
PRINCIPALS=${PRINCIPALS:-4}
ROUNDS=${ROUNDS:-1}
SIZING_USERS=${SIZING_USERS:-1000}
GRANTS=${GRANTS:-200}
OUT=${OUT:-target/cluster-load}
T=${CARGO_TARGET_DIR:-target}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)   # nginx wants absolute paths
if [ "${BUILD:-1}" = 1 ]; then cargo build --release --quiet --bin mcp-dust-server --example loadgen; fi
BIN=$T/release/mcp-dust-server
LOADGEN=$T/release/examples/loadgen

# shellcheck source=bench/common.sh
. bench/common.sh

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SIM_PORT=$(free_port); REDIS_PORT=$(free_port); PORT_A=$(free_port); PORT_B=$(free_port)
C_HTTP=$(free_port); C_HTTPS=$(free_port); S_HTTP=$(free_port); S_HTTPS=$(free_port)
SIMAPI=http://127.0.0.1:$SIM_PORT/api/v1/w/$WS
CLUSTER=https://localhost:$C_HTTPS
SINGLE=https://localhost:$S_HTTPS

# The load's principals are the first PRINCIPALS keys; the sizing's callers the next SIZING_USERS.
KEYS=("$KEY")
for i in $(seq 2 $((PRINCIPALS + SIZING_USERS))); do KEYS+=("sk-$(printf '%032x' "$i")"); done
"$BIN" sim --listen "127.0.0.1:$SIM_PORT" --workspace-id "$WS" --api-key "$KEY" \
  --extra-api-keys "$(IFS=,; echo "${KEYS[*]:1}")" >"$OUT/sim.log" 2>&1 &
SIM_PID=$!; pids+=("$SIM_PID")

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
  >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!; pids+=("$REDIS_PID")
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
for _ in $(seq 1 100); do rcli ping >/dev/null 2>&1 && break; sleep 0.05; done

# Settings as tests/all/cluster.rs `Instance::start` gives them, with limits that never refuse.
SECRET=$("$BIN" gen-secret | tail -1)
start_instance() { # name port
  env -i PATH="$PATH" NODE_ENV=production SECURITY_SECRET_KEY="$SECRET" \
    MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT="$2" MCP_PUBLIC_URL="$CLUSTER" \
    ALLOWED_HOSTS="localhost:$C_HTTPS,localhost:$S_HTTPS,localhost,127.0.0.1:$2" \
    TRUSTED_PROXIES=127.0.0.1/32 REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    RATE_LIMIT_MAX=1000000000 RATE_LIMIT_LOGIN_MAX=1000000000 \
    DUST_BASE_URL="http://127.0.0.1:$SIM_PORT" DUST_WORKSPACE_ID="$WS" \
    AUDIT_LOG_FILE="$OUT/audit-$1.jsonl" LOG_LEVEL=warn "$BIN" serve >"$OUT/serve-$1.log" 2>&1 &
}
start_instance a "$PORT_A"; PID_A=$!; pids+=("$PID_A")
start_instance b "$PORT_B"; PID_B=$!; pids+=("$PID_B")
wait_for "http://127.0.0.1:$PORT_A/ready"
wait_for "http://127.0.0.1:$PORT_B/ready"

# One certificate for both proxies, made as Nginx::start makes it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
  -keyout "$OUT/key.pem" -out "$OUT/cert.pem" >/dev/null 2>&1
CA=$OUT/cert.pem
USER_LINE=""; [ "$(id -u)" = 0 ] && USER_LINE="user root;"
start_nginx() { # dir http https upstream-a upstream-b
  local d=$OUT/$1
  mkdir -p "$d"
  sed -e "s|\${UPSTREAM_A}|127.0.0.1:$4|; s|\${UPSTREAM_B}|127.0.0.1:$5|" \
    -e "s|\${HTTP_PORT}|$2|g; s|\${HTTPS_PORT}|$3|g; s|\${SERVER_NAME}|localhost|g" \
    -e "s|\${TLS_CERT}|$OUT/cert.pem|; s|\${TLS_KEY}|$OUT/key.pem|" \
    deploy/nginx/mcp-dust-server.conf.template >"$d/site.conf"
  # shellcheck disable=SC2016 # a literal placeholder, not an expansion
  if grep -qF '${' "$d/site.conf"; then echo "a placeholder was left unfilled in $d/site.conf" >&2; exit 1; fi
  cat >"$d/nginx.conf" <<EOF
$USER_LINE
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy; fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
  include $d/site.conf;
}
EOF
  nginx -t -q -p "$d" -c "$d/nginx.conf"
  nginx -p "$d" -c "$d/nginx.conf" >"$d/stderr.log" 2>&1 &
}
start_nginx nginx-cluster "$C_HTTP" "$C_HTTPS" "$PORT_A" "$PORT_B"; pids+=($!)
start_nginx nginx-single "$S_HTTP" "$S_HTTPS" "$PORT_A" "$PORT_A"; pids+=($!)
for url in "$CLUSTER" "$SINGLE"; do
  for _ in $(seq 1 200); do curl -sf --cacert "$CA" -o /dev/null "$url/health" && break; sleep 0.05; done
done

login_via() { # base key [session]
  curl -sf --cacert "$CA" -X POST "$1/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"apiKey\":\"$2\",\"workspaceId\":\"$WS\"${3:+,\"session\":true}}"
}
TOKENS=()
for k in "${KEYS[@]:0:$PRINCIPALS}"; do TOKENS+=("$(login_via "$CLUSTER" "$k" | jq -r .token)"); done
LOADGEN_TOKEN=$(IFS=,; echo "${TOKENS[*]}")
export LOADGEN_TOKEN

# `calls` of every command but INFO (which this script sends), one "name calls" line each.
# Commands run inside a Lua script are counted as well as the EVALSHA that ran them.
# Also the CPU time so far, in µs, of Redis (`_redis_cpu`) and of both instances (`_serve_cpu`).
redis_calls() {
  {
    rcli INFO commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_/ && $1 != "cmdstat_info" { sub("cmdstat_", "", $1); print $1, $3 }'
    rcli INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "_redis_cpu %d\n", s * 1e6 }'
    # utime and stime (fields 14 and 15 of /proc/PID/stat, in clock ticks of 10 ms).
    cat "/proc/$PID_A/stat" "/proc/$PID_B/stat" | awk '{ s += $14 + $15 } END { printf "_serve_cpu %d\n", s * 10000 }'
  } >"$1"
}
RAW=$OUT/raw.md
CMDS=$OUT/commands.md
: >"$RAW"
: >"$CMDS"
# One measurement: loadgen through the proxy at $1 labelled $2; the Redis command counts are
# read once the warm-up is over and again at the end, and divided by the requests measured.
# Appends four columns to loadgen's row: every command per request, scripts (EVALSHA/EVAL) per
# request, and the CPU time per request of Redis and of the two instances together (the
# instance not behind the single-instance proxy is idle then); the per-command breakdown goes
# to $CMDS.
measure() {
  local base=$1 label=$2; shift 2
  "$LOADGEN" --url "$base/mcp" --ca-file "$CA" --mode mcp2026 --concurrency "$CONC" \
    --duration "$DURATION" --warmup "$WARMUP" --pid "$PID_A" --label "$label" "$@" >"$OUT/row" &
  local lg=$!
  sleep "$WARMUP"
  redis_calls "$OUT/calls.before"
  wait "$lg"
  redis_calls "$OUT/calls.after"
  local requests
  requests=$(awk -F'|' '{ print $4 + 0 }' "$OUT/row")
  python3 - "$OUT/calls.before" "$OUT/calls.after" "$requests" "$label" "$OUT/row" "$CMDS" <<'PY' | tee -a "$RAW"
import sys
def load(path):
    return {name: int(n) for name, n in (line.split() for line in open(path) if line.strip())}
before, after = load(sys.argv[1]), load(sys.argv[2])
requests, label = max(int(sys.argv[3]), 1), sys.argv[4]
delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
redis_cpu, serve_cpu = delta.pop("_redis_cpu", 0), delta.pop("_serve_cpu", 0)
total = sum(delta.values())
scripts = delta.get("evalsha", 0) + delta.get("eval", 0)
print(f"{open(sys.argv[5]).read().rstrip()} {total / requests:.2f} | {scripts / requests:.2f} "
      f"| {redis_cpu / requests:.1f} | {serve_cpu / requests:.0f} |")
with open(sys.argv[6], "a") as out:
    top = sorted(delta.items(), key=lambda kv: -kv[1])
    out.write(f"| {label} | " + ", ".join(f"{k} {v / requests:.2f}" for k, v in top) + " |\n")
PY
}
LIST_AGENTS=(--method tools/call --tool list_agents)
echo "cluster load: c=$CONC, ${DURATION} s measured after ${WARMUP} s, $PRINCIPALS principals; load $(uptime | sed 's/.*load/load/')" >&2
echo "| scenario | load | ok | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | instance A RSS MB | Redis commands/req | of which scripts/req | Redis CPU µs/req | instances' CPU µs/req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
  echo "## round $r ($(uptime | sed 's/.*load/load/'))" >&2
  measure "$CLUSTER" "tools/list, 2 instances" --method tools/list
  measure "$SINGLE" "tools/list, 1 instance" --method tools/list
  measure "$CLUSTER" "list_agents, 2 instances" "${LIST_AGENTS[@]}"
  measure "$SINGLE" "list_agents, 1 instance" "${LIST_AGENTS[@]}"
done
echo
echo "Redis commands per request, by command (those inside scripts included):"
echo "| scenario | commands per request |"
echo "|---|---|"
cat "$CMDS"
echo "load after the runs: $(uptime | sed 's/.*load/load/')"
# How nginx spread the work: the audit records each instance wrote (tool calls and logins).
echo "audit records written: instance A $(wc -l <"$OUT/audit-a.jsonl"), instance B $(wc -l <"$OUT/audit-b.jsonl")"

[ "$SIZING_USERS" -gt 0 ] || exit 0

# ---- Sizing: bytes per record family, from MEMORY USAGE of every key and from used_memory.
# `snapshot NAME` writes "family count bytes" lines (family: the key after the prefix, up to
# its first ':'), and the used_memory line.
snapshot() {
  rcli --scan --pattern 'mcp-dust:*' >"$OUT/mem-$1.keys"
  sed 's/^/MEMORY USAGE /' "$OUT/mem-$1.keys" | rcli >"$OUT/mem-$1.bytes"
  rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }' >"$OUT/mem-$1.used"
}
report_step() { # before after count what
  python3 - "$OUT" "$1" "$2" "$3" "$4" <<'PY'
import sys, collections
out, before, after, n, what = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def load(name):
    keys = open(f"{out}/mem-{name}.keys").read().split()
    sizes = [int(x) if x.strip().isdigit() else 0 for x in open(f"{out}/mem-{name}.bytes").read().split("\n")[:len(keys)]]
    fam = collections.defaultdict(lambda: [0, 0])
    for k, b in zip(keys, sizes):
        f = k[len("mcp-dust:"):].split(":")[0]
        fam[f][0] += 1
        fam[f][1] += b
    return fam, int(open(f"{out}/mem-{name}.used").read().strip())
(b, ub), (a, ua) = load(before), load(after)
print(f"\n{what} ({n}):")
print("| key family | keys added | bytes added (MEMORY USAGE) | per record |")
print("|---|---|---|---|")
total = 0
for f in sorted(set(a) | set(b)):
    dk, db = a[f][0] - b[f][0], a[f][1] - b[f][1]
    if dk or db:
        total += db
        print(f"| {f} | {dk} | {db} | {db / n:.0f} |")
print(f"| **all keys** | | {total} | **{total / n:.0f}** |")
print(f"| used_memory delta | | {ua - ub} | {(ua - ub) / n:.0f} |")
PY
}
SIZING=("${KEYS[@]:$PRINCIPALS:$SIZING_USERS}")
# Logins run 8 at a time; each caller logs in once per step.
parallel_logins() { # session-flag
  printf '%s\n' "${SIZING[@]}" | xargs -P 8 -I{} curl -sf --cacert "$CA" -o /dev/null \
    -X POST "$CLUSTER/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"apiKey\":\"{}\",\"workspaceId\":\"$WS\"$1}"
}
echo
echo "Sizing: $SIZING_USERS callers, through nginx to both instances; load $(uptime | sed 's/.*load/load/')"
snapshot 0
parallel_logins ""
sleep 1; snapshot 1
report_step 0 1 "$SIZING_USERS" "bearer logins, one per caller"
parallel_logins ',"session":true'
sleep 1; snapshot 2
report_step 1 2 "$SIZING_USERS" "browser session logins, one per caller (each with its linked token record)"

# One OAuth grant: registration, consent page, approval, code exchange with PKCE (as
# tests/all/oauth.rs does it), by the caller with key $1.
REDIRECT=http://127.0.0.1:33418/callback
oauth_grant() {
  local key=$1 jar client verifier challenge page consent csrf location code
  jar=$(mktemp "$OUT/jar.XXXXXX")
  # Registration is limited to REGISTRATION_QUOTA (60) an hour per address, and through nginx
  # every caller here is 127.0.0.1: each registers directly with an instance instead, from an
  # address of its own (X-Forwarded-For, trusted from 127.0.0.1 by TRUSTED_PROXIES), as
  # connectors on their users' machines would.
  local n=$((16#${key#sk-}))
  client=$(curl -sf -X POST "http://127.0.0.1:$PORT_A/oauth/register" -H 'Content-Type: application/json' \
    -H "X-Forwarded-For: 10.$((n / 65536 % 256)).$((n / 256 % 256)).$((n % 256))" \
    -d "{\"client_name\":\"sizing\",\"redirect_uris\":[\"$REDIRECT\"],\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\",\"refresh_token\"]}" \
    | jq -r '.client_id // empty')
  [ -n "$client" ] || { echo "an OAuth registration failed (caller $key)" >&2; return 1; }
  verifier=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
  page=$(curl -sf --cacert "$CA" -c "$jar" -G "$CLUSTER/oauth/authorize" \
    --data-urlencode response_type=code --data-urlencode "client_id=$client" \
    --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode "state=s$RANDOM$RANDOM" \
    --data-urlencode "code_challenge=$challenge" --data-urlencode code_challenge_method=S256 \
    --data-urlencode "scope=read:workspaces read:agents execute:agents" \
    --data-urlencode "resource=$CLUSTER/mcp")
  consent=$(sed -n 's/.*name="consent" value="\([^"]*\)".*/\1/p' <<<"$page" | head -1)
  csrf=$(sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' <<<"$page" | head -1)
  location=$(curl -s --cacert "$CA" -b "$jar" -o /dev/null -w '%{redirect_url}' -X POST "$CLUSTER/oauth/authorize" \
    --data-urlencode "consent=$consent" --data-urlencode "csrf_token=$csrf" \
    --data-urlencode "api_key=$key" --data-urlencode "workspace_id=$WS" --data-urlencode action=approve \
    --data-urlencode scope=read:workspaces --data-urlencode scope=read:agents --data-urlencode scope=execute:agents)
  code=$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$location")
  rm -f "$jar"
  curl -sf --cacert "$CA" -X POST "$CLUSTER/oauth/token" \
    --data-urlencode grant_type=authorization_code --data-urlencode "code=$code" \
    --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode "client_id=$client" \
    --data-urlencode "code_verifier=$verifier" --data-urlencode "resource=$CLUSTER/mcp" \
    | jq -r '.refresh_token // empty' >"$OUT/grants/$key"
  [ -s "$OUT/grants/$key" ] || { echo "an OAuth grant failed (caller $key)" >&2; return 1; }
  printf '%s\n' "$client" >>"$OUT/grants/$key"
}
# One refresh of the grant of the caller with key $1 (a new access token and refresh token; the
# spent one is kept until its own expiry, to catch a replay).
oauth_refresh() {
  local rt client next
  { read -r rt; read -r client; } <"$OUT/grants/$1"
  next=$(curl -sf --cacert "$CA" -X POST "$CLUSTER/oauth/token" --data-urlencode grant_type=refresh_token \
    --data-urlencode "refresh_token=$rt" --data-urlencode "client_id=$client" \
    --data-urlencode "resource=$CLUSTER/mcp" | jq -r '.refresh_token // empty')
  [ -n "$next" ] || { echo "an OAuth refresh failed (caller $1)" >&2; return 1; }
}
export -f oauth_grant oauth_refresh
export CA CLUSTER OUT WS REDIRECT PORT_A
if [ "$GRANTS" -gt 0 ]; then
  mkdir -p "$OUT/grants"
  printf '%s\n' "${SIZING[@]:0:$GRANTS}" | xargs -P 8 -I{} bash -c 'oauth_grant {}'
  sleep 1; snapshot 3
  report_step 2 3 "$GRANTS" "OAuth grants (client registered and used, code exchanged, access and refresh token), one per caller"
  printf '%s\n' "${SIZING[@]:0:$GRANTS}" | xargs -P 8 -I{} bash -c 'oauth_refresh {}'
  sleep 1; snapshot 4
  report_step 3 4 "$GRANTS" "OAuth refreshes, one per grant (a new access token and refresh token; the spent one stays until its expiry)"
fi
echo
echo "Rate-limit counters now held (per address and per principal, each one hash):"
rcli --scan --pattern 'mcp-dust:rl:*' | sed 's/^/MEMORY USAGE /' | rcli \
  | awk '{ s += $1; n++ } END { if (n) printf "%d keys, %.0f bytes each on average (MEMORY USAGE)\n", n, s / n }'
rcli INFO memory | tr -d '\r' | grep -E '^(used_memory|used_memory_dataset|mem_fragmentation_ratio):'
