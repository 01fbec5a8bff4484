#!/usr/bin/env bash
# Soak (docs/RELIABILITY.md, "Soak"): the simulator and the full server on loopback, a steady
# mixed load for a bounded time (MCP tools/list, list_agents, search_knowledge, ask_agent
# streamed; REST agents, knowledge bases, execute streamed; login/refresh/logout churn on fresh
# connections), with the server's RSS and open file descriptors sampled from /proc and the size
# of each bounded structure read from /metrics. Prints the report of bench/soak.rs; exits
# non-zero on any error, on growth beyond noise once every structure is full or steady, or when
# they did not settle in time.
#
#   bench/soak.sh                        # release build, 10 minutes
#   DURATION=120 PROFILE=debug bench/soak.sh
#
# Settings: DURATION (s, 600), SAMPLE (s between samples, 5), WARMUP (s at least out of the
# verdict, 60; it starts later while structures fill), TOKEN_TTL (SECURITY_TOKEN_EXPIRATION,
# 120 s: churned token records expire and are purged within the run, so the token store reaches
# its steady state), CONV_MAX (CONVERSATION_MAX_RECORDS and CONVERSATION_MAX_PER_WORKSPACE,
# RATE × DURATION / 3: the soak records about 1.7 conversations per second per unit of RATE,
# so the cap is full after about a fifth of the run, where the default 200,000 would take
# hours), RATE (requests/s per worker, 5; 9 workers), PROFILE (release), OUT (target/soak).
# The recent-audit window (AUDIT_RECENT_RECORDS, 5,000) fills within a minute at any RATE.
# Needs curl and jq. Ports 18091 (simulator) and 5011 (server) must be free; everything it
# starts is stopped on exit, and the server is then stopped with SIGTERM and must exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-600}
SAMPLE=${SAMPLE:-5}
WARMUP=${WARMUP:-60}
TOKEN_TTL=${TOKEN_TTL:-120}
RATE=${RATE:-5}
CONV_MAX=${CONV_MAX:-$((RATE * DURATION / 3))}
OUT=${OUT:-target/soak}
PROFILE=${PROFILE:-release}
mkdir -p "$OUT"

if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin mcp-dust-server --example soak
else cargo build --quiet --bin mcp-dust-server --example soak; fi
BIN=target/$PROFILE/mcp-dust-server
SOAK=target/$PROFILE/examples/soak

WS=soakws0001
KEY=sk-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
SIM_PORT=18091
PORT=5011
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 400); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

"$BIN" sim --listen "127.0.0.1:$SIM_PORT" --workspace-id "$WS" --api-key "$KEY" >"$OUT/sim.log" 2>&1 &
pids+=($!)
: >"$OUT/audit.log"
DUST_BASE_URL=http://127.0.0.1:$SIM_PORT MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT=$PORT \
  RATE_LIMIT_MAX=1000000000 RATE_LIMIT_LOGIN_MAX=1000000 LOG_LEVEL=warn \
  SECURITY_TOKEN_EXPIRATION=$TOKEN_TTL \
  CONVERSATION_MAX_RECORDS=$CONV_MAX CONVERSATION_MAX_PER_WORKSPACE=$CONV_MAX \
  PERMISSIONS_DEFAULT=read:workspaces,read:agents,execute:agents,read:knowledge-bases,read:connectors,admin:metrics \
  AUDIT_LOG_FILE="$OUT/audit.log" "$BIN" serve >"$OUT/serve.log" 2>&1 &
SRV_PID=$!; pids+=("$SRV_PID")
wait_for "http://127.0.0.1:$PORT/ready"
SIMAPI=http://127.0.0.1:$SIM_PORT/api/v1/w/$WS
for _ in $(seq 1 100); do
  SPACE=$(curl -sf -H "Authorization: Bearer $KEY" "$SIMAPI/spaces" | jq -r '.spaces[0].sId') && break
  sleep 0.1
done
DS=$(curl -sf -H "Authorization: Bearer $KEY" "$SIMAPI/spaces/$SPACE/data_sources" | jq -r '.data_sources[0].sId')

echo "soak: ${DURATION}s at $RATE req/s per worker, conversations capped at $CONV_MAX, server pid $SRV_PID ($PROFILE), load $(uptime | sed 's/.*load/load/')" >&2
status=0
SOAK_API_KEY=$KEY "$SOAK" --base "http://127.0.0.1:$PORT" --workspace-id "$WS" \
  --data-source-id "$DS" --pid "$SRV_PID" --duration "$DURATION" --warmup "$WARMUP" \
  --sample-every "$SAMPLE" --worker-rate "$RATE" --csv "$OUT/samples.csv" | tee "$OUT/report.md" || status=$?

# The end of a soak is also a shutdown under (just stopped) load: it must be clean.
kill -TERM "$SRV_PID"
for _ in $(seq 1 600); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
if wait "$SRV_PID"; then echo "server stopped cleanly on SIGTERM (exit 0)"
else echo "server exit status $? on SIGTERM" >&2; status=1; fi
echo "audit records written: $(wc -l <"$OUT/audit.log")"
if grep -q panicked "$OUT/serve.log"; then echo "the server panicked (see $OUT/serve.log)" >&2; status=1; fi
exit "$status"
