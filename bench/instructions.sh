#!/usr/bin/env bash
# Instructions per request under callgrind (docs/PERFORMANCE.md, "Instructions per request"):
# the server (or the bare route) runs under `valgrind --tool=callgrind` with one tokio worker,
# the load generator sends `tools/list` (or another method) at c=4 for 3 s to warm up, the
# counters are zeroed, and the next N seconds are counted. Instructions are counted, not timed,
# so the figure is the same on a busy machine; it misses what the kernel does for the sockets,
# and two things are distorted: valgrind hides SHA-NI (SHA-256 runs its portable code, about ten
# times the instructions) and counts each byte of `rep movsb` (large `memcpy`s look dearer).
#
#   bench/instructions.sh                        # tools/list through the whole stack
#   BARE=1 bench/instructions.sh                 # the bare route's GET /10k (same-size answer)
#   METHOD=tools/call ARGS="--tool list_agents" bench/instructions.sh
#
# Settings: BIN (target/release/mcp-dust-server), EX (target/release/examples), OUT
# (target/instructions), N (measured seconds, 8). Prints the requests counted, the instructions
# per request, and the functions of this crate and its layers with the most inclusive
# instructions per request. Needs valgrind, curl and jq; ports 18095 and 5095 must be free.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/mcp-dust-server}
EX=${EX:-target/release/examples}
OUT=${OUT:-target/instructions}
N=${N:-8}
METHOD=${METHOD:-tools/list}
mkdir -p "$OUT"
rm -f "$OUT"/cg.out*
WS=benchws0001
KEY=sk-0123456789abcdef0123456789abcdef
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$BIN" sim --listen 127.0.0.1:18095 --workspace-id "$WS" --api-key "$KEY" >"$OUT/sim.log" 2>&1 &
pids+=("$!")
if [ "${BARE:-0}" = 1 ]; then
  TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
    "$EX/bare" 127.0.0.1:5095 >"$OUT/serve.log" 2>&1 &
  SRV=$!; pids+=("$SRV")
  for _ in $(seq 1 600); do curl -sf -o /dev/null http://127.0.0.1:5095/ && break; sleep 0.1; done
  LOAD=(--mode http --url http://127.0.0.1:5095/10k)
else
  DUST_BASE_URL=http://127.0.0.1:18095 DUST_WORKSPACE_ID=$WS MCP_SERVER_PORT=5095 \
    RATE_LIMIT_MAX=1000000000 LOG_LEVEL=warn AUDIT_LOG_FILE="$OUT/audit.log" TOKIO_WORKER_THREADS=1 \
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" "$BIN" serve >"$OUT/serve.log" 2>&1 &
  SRV=$!; pids+=("$SRV")
  for _ in $(seq 1 600); do curl -sf -o /dev/null http://127.0.0.1:5095/live && break; sleep 0.1; done
  TOKEN=$(curl -sf -X POST http://127.0.0.1:5095/api/v1/auth/login -H 'Content-Type: application/json' \
    -d "{\"apiKey\":\"$KEY\",\"workspaceId\":\"$WS\"}" | jq -r .token)
  read -r -a EXTRA <<<"${ARGS:-}"
  LOAD=(--url http://127.0.0.1:5095/mcp --token "$TOKEN" --method "$METHOD" "${EXTRA[@]}")
fi
"$EX/loadgen" "${LOAD[@]}" --concurrency 4 --duration 3 --warmup 0 --label warm-up >/dev/null
callgrind_control -z "$SRV" >/dev/null 2>&1
"$EX/loadgen" "${LOAD[@]}" --concurrency 4 --duration "$N" --warmup 0 --label counted >"$OUT/load.md"
callgrind_control -d "$SRV" >/dev/null 2>&1
for _ in $(seq 1 50); do ls "$OUT"/cg.out.* >/dev/null 2>&1 && break; sleep 0.1; done
DUMP=$(ls "$OUT"/cg.out.* | head -1)
REQUESTS=$(awk -F'|' '/counted/ {gsub(/ /, "", $4); print $4}' "$OUT/load.md")
TOTAL=$(awk '/^summary:/ {print $2}' "$DUMP")
echo "requests counted: $REQUESTS"
echo "instructions per request: $((TOTAL / REQUESTS))"
callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$DUMP" 2>/dev/null \
  | sed -E -e 's/ \[\/.*//' -e 's/\?\?\?://' -e 's/\( *[0-9.]+%\)//' \
  | grep -E 'mcp_dust_server::|sha2::sha256::soft::compress|__memcpy_avx_unaligned' \
  | grep -v 'drop_in_place\|listener::serve_connection\|{{closure}}>' \
  | awk -v n="$REQUESTS" '{c=$1; gsub(",", "", c); $1=""; printf "%9.1fk %s\n", c/n/1000, $0}' \
  | head -"${TOP:-25}"
