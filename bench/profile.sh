#!/usr/bin/env bash
# CPU profile of the server under one scenario (docs/PERFORMANCE.md, "Profile and findings"):
# starts the simulator and `serve` as bench/run.sh does, drives them with the load generator
# and samples the server with `perf record -e cpu-clock` (the VM has no hardware counters).
#
#   bench/profile.sh                                  # tools/list 2026-07-28, c=8, 8 s
#   SCENARIO=list_agents bench/profile.sh             # or search_knowledge (as bench/run.sh)
#   SECONDS_=8 ARGS="--method tools/call --tool list_agents" bench/profile.sh
#
# Pinned as `PIN=1 bench/run.sh` is: the server on SERVER_CPUS (default 0, one tokio worker per
# CPU), the simulator and the load on CLIENT_CPUS (default 1); perf samples the server's CPUs
# (`-C`), since `perf record -p` fails once tokio's blocking threads come and go ("Couldn't
# create thread/CPU maps"). The load is closed-loop, so the server's CPU is saturated: what shows
# is where its cycles go per request.
#
# Writes target/bench/perf.data and prints the top symbols and the share of each object
# (server code, libc, kernel). Needs perf, curl and jq; ports 18090 and 5001 must be free.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${SECONDS_:-8}
SCENARIO=${SCENARIO:-tools/list}
CONC=${CONC:-8}
OUT=${OUT:-target/bench}
mkdir -p "$OUT"
[ "${BUILD:-1}" = 0 ] || cargo build --release --quiet --bin mcp-dust-server --examples
BIN=${SERVE_BIN:-target/release/mcp-dust-server}
EX=${EX_DIR:-target/release/examples}

# shellcheck source=bench/common.sh
. bench/common.sh
pin

"${ON_CLIENT[@]}" "$BIN" sim --listen 127.0.0.1:18090 --workspace-id "$WS" --api-key "$KEY" >"$OUT/sim.log" 2>&1 &
pids+=("$!")
DUST_BASE_URL=http://127.0.0.1:18090 DUST_WORKSPACE_ID=$WS MCP_SERVER_PORT=5001 \
  RATE_LIMIT_MAX=1000000000 LOG_LEVEL=warn AUDIT_LOG_FILE="$OUT/audit.log" \
  "${ON_SERVER[@]}" "$BIN" serve >"$OUT/serve.log" 2>&1 &
SRV_PID=$!; pids+=("$SRV_PID")
wait_for_sim
wait_for http://127.0.0.1:5001/live
TOKEN=$(login "$KEY")

if [ -n "${ARGS:-}" ]; then
  read -r -a LOAD <<<"$ARGS" # a list of words, no quoting
else
  case "$SCENARIO" in
    tools/list) LOAD=(--method tools/list) ;;
    list_agents) LOAD=(--method tools/call --tool list_agents) ;;
    search_knowledge)
      first_data_source
      LOAD=(--method tools/call --tool search_knowledge
        --arguments "{\"query\":\"vacation policy\",\"knowledgeBaseId\":\"$DS\",\"topK\":8}") ;;
    *) echo "SCENARIO: tools/list, list_agents or search_knowledge" >&2; exit 2 ;;
  esac
fi
LOADGEN_TOKEN=$TOKEN "${ON_CLIENT[@]}" "$EX/loadgen" --url http://127.0.0.1:5001/mcp --mode mcp2026 --pid "$SRV_PID" \
  --concurrency "$CONC" --duration $((DURATION + 2)) --warmup 1 --label "profile $SCENARIO" "${LOAD[@]}" &
LG=$!
sleep 1
# CALLGRAPH=dwarf: call chains through code built without frame pointers (libc's memmove, say),
# at the price of a larger perf.data; then `perf report -i target/bench/perf.data -G`.
perf record -q -F 999 -e cpu-clock --call-graph "${CALLGRAPH:-fp}" -C "$SERVER_CPUS" -o "$OUT/perf.data" -- sleep "$DURATION" 2>/dev/null
wait "$LG"
echo
echo "by object:"
perf report -q -i "$OUT/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | head -8
echo
echo "top symbols (self):"
perf report -q -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | head -40 | cut -c1-160
