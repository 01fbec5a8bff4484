#!/usr/bin/env bash
# Every scenario of docs/PERFORMANCE.md in one run, on loopback: the simulator, the full server
# (auth, rate limit with a high RATE_LIMIT_MAX, headers, audit to a file) and a bare axum route,
# measured side by side and repeated REPEATS times; medians are printed at the end.
#
#   bench/run.sh                      # release build, 3 repeats, 5 s per measurement
#   REPEATS=5 DURATION=10 bench/run.sh
#   PIN=1 bench/run.sh                # server on CPU 0, simulator and load on CPU 1 (see below)
#
# PIN=1 keeps the load generator and the simulator off the server's core (taskset), so that the
# server's figures are not a share of a core fought over by three processes: SERVER_CPUS (default
# 0) runs the server, the bare route and the cold start, with one tokio worker per listed CPU;
# CLIENT_CPUS (default 1) runs the simulator, the load generator and the streaming probe. On a
# 2-core machine this is the only layout where a side-by-side ratio means something.
#
# Needs curl, jq and python3. Ports 18090 (simulator), 5001 (server), 5002 (bare route), 5003 (cold
# start) must be free. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS=${REPEATS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
RATES=${RATES:-"200 500 1000"}
CONC=${CONC:-8}
# Callers the load is spread over (one simulator key and one login each): the bulkhead allows 8
# tool calls in flight per principal, and one principal at 1000 req/s trips it on any stall.
PRINCIPALS=${PRINCIPALS:-4}
OUT=${OUT:-target/bench}
mkdir -p "$OUT"
RAW="$OUT/raw.md"
: >"$RAW"

PROFILE=${PROFILE:-release}   # PROFILE=debug for a quick check of the script itself
# BUILD=0: use the binaries as they are (e.g. copies in EX_DIR while a new build runs).
if [ "${BUILD:-1}" = 0 ]; then :
elif [ "$PROFILE" = release ]; then cargo build --release --quiet --bin mcp-dust-server --examples
else cargo build --quiet --bin mcp-dust-server --examples; fi
BIN=${SERVE_BIN:-target/$PROFILE/mcp-dust-server}   # SERVE_BIN: another build of the server (before/after)
EX=${EX_DIR:-target/$PROFILE/examples}

# shellcheck source=bench/common.sh
. bench/common.sh
ON_SERVER=()
ON_CLIENT=()
if [ "${PIN:-0}" = 1 ]; then
  pin
  echo "pinned: server, bare route and cold start on CPU $SERVER_CPUS; simulator and load on CPU $CLIENT_CPUS" >&2
fi

EXTRA_KEYS=()
for i in $(seq 2 "$PRINCIPALS"); do EXTRA_KEYS+=("sk-$(printf '%032x' "$i")"); done
KEYS=$(IFS=,; echo "$KEY${EXTRA_KEYS[*]:+,${EXTRA_KEYS[*]}}")

SIM_ARGS=(--listen 127.0.0.1:18090 --workspace-id "$WS" --api-key "$KEY")
[ ${#EXTRA_KEYS[@]} -gt 0 ] && SIM_ARGS+=(--extra-api-keys "$(IFS=,; echo "${EXTRA_KEYS[*]}")")
"${ON_CLIENT[@]}" "$BIN" sim "${SIM_ARGS[@]}" >"$OUT/sim.log" 2>&1 &
SIM_PID=$!; pids+=("$SIM_PID")
"${ON_SERVER[@]}" "$EX/bare" 127.0.0.1:5002 >/dev/null 2>&1 &
BARE_PID=$!; pids+=("$BARE_PID")
DUST_BASE_URL=http://127.0.0.1:18090 DUST_WORKSPACE_ID=$WS MCP_SERVER_PORT=5001 \
  RATE_LIMIT_MAX=1000000000 RATE_LIMIT_LOGIN_MAX=1000 LOG_LEVEL=warn \
  AUDIT_LOG_FILE="$OUT/audit.log" "${ON_SERVER[@]}" "$BIN" serve >"$OUT/serve.log" 2>&1 &
SRV_PID=$!; pids+=("$SRV_PID")
wait_for http://127.0.0.1:5001/live
wait_for http://127.0.0.1:5002/
sleep 1
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
IDLE_RSS=$(rss "$SRV_PID")

TOKENS=()
for k in ${KEYS//,/ }; do TOKENS+=("$(login "$k")"); done
LOADGEN_TOKEN=$(IFS=,; echo "${TOKENS[*]}")
export LOADGEN_TOKEN
first_data_source
SEARCH_PATH="spaces/$SPACE/data_sources/$DS/search?query=vacation%20policy&top_k=8"

lg() { "${ON_CLIENT[@]}" "$EX/loadgen" --duration "$DURATION" --warmup "$WARMUP" "$@" | tee -a "$RAW"; }
direct() { LOADGEN_TOKEN=$KEYS lg --mode http --pid "$SIM_PID" "$@"; }
stack() { lg --url http://127.0.0.1:5001/mcp --mode mcp2026 --pid "$SRV_PID" "$@"; }
LIST_AGENTS=(--method tools/call --tool list_agents)
SEARCH=(--method tools/call --tool search_knowledge --arguments "{\"query\":\"vacation policy\",\"knowledgeBaseId\":\"$DS\",\"topK\":8}")

for r in $(seq 1 "$REPEATS"); do
  echo "## repeat $r ($(uptime | sed 's/.*load/load/'))" >&2
  for rate in $RATES; do
    direct --url "$SIMAPI/assistant/agent_configurations" --rate "$rate" --label "list_agents direct"
    stack "${LIST_AGENTS[@]}" --rate "$rate" --label "list_agents stack"
    direct --url "$SIMAPI/$SEARCH_PATH" --rate "$rate" --label "search_knowledge direct"
    stack "${SEARCH[@]}" --rate "$rate" --label "search_knowledge stack"
  done
  direct --url "$SIMAPI/assistant/agent_configurations" --concurrency "$CONC" --label "list_agents direct"
  stack "${LIST_AGENTS[@]}" --concurrency "$CONC" --label "list_agents stack"
  direct --url "$SIMAPI/$SEARCH_PATH" --concurrency "$CONC" --label "search_knowledge direct"
  stack "${SEARCH[@]}" --concurrency "$CONC" --label "search_knowledge stack"
  lg --mode http --url http://127.0.0.1:5002/ --concurrency "$CONC" --pid "$BARE_PID" --label "bare route"
  lg --mode http --url http://127.0.0.1:5002/10k --concurrency "$CONC" --pid "$BARE_PID" --label "bare route 10 KB"
  stack --method tools/list --concurrency "$CONC" --label "tools/list 2026-07-28"
  lg --url http://127.0.0.1:5001/mcp --mode mcp-legacy --pid "$SRV_PID" --method tools/list \
    --concurrency "$CONC" --label "tools/list 2025-11-25"
done

echo
echo "load: $(uptime | sed 's/.*load/load/')"
echo "server idle RSS: $IDLE_RSS MB; after the runs: $(rss "$SRV_PID") MB"
echo
echo "Medians over $REPEATS repeats (${DURATION} s measured each, ${WARMUP} s warm-up):"
python3 - "$RAW" <<'PY'
import sys, statistics, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    if len(cells) != 10 or cells[0] in ('scenario',) or cells[0].startswith('-'):
        continue
    rows.setdefault((cells[0], cells[1]), []).append(cells)
print("| scenario | load | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | server RSS MB |")
print("|---|---|---|---|---|---|---|---|---|")
med = {}
for (name, load), runs in rows.items():
    col = lambda i: statistics.median(float(r[i]) for r in runs)
    errs = sum(int(r[3]) for r in runs)
    med[(name, load)] = {'rps': col(4), 'p50': col(5), 'p99': col(7)}
    print(f"| {name} | {load} | {col(4):.0f} | {col(5):.3f} | {col(6):.3f} | {col(7):.3f} | {col(8):.3f} | {errs} | {runs[-1][9]} |")
print()
print("| added by the stack | load | p50 ms | p99 ms | throughput ratio |")
print("|---|---|---|---|---|")
for (name, load), m in med.items():
    if name.endswith(' stack') and (name.replace(' stack', ' direct'), load) in med:
        d = med[(name.replace(' stack', ' direct'), load)]
        print(f"| {name.replace(' stack', '')} | {load} | {m['p50'] - d['p50']:.3f} | {m['p99'] - d['p99']:.3f} | {m['rps'] / d['rps']:.2f} |")
for bare_name in ('bare route', 'bare route 10 KB'):
    bare = next((m for (n, _), m in med.items() if n == bare_name), None)
    for (name, load), m in med.items():
        if bare and name.startswith('tools/list'):
            print(f"| {name} vs {bare_name} | {load} | | | {m['rps'] / bare['rps']:.2f} |")
PY

echo
"${ON_SERVER[@]}" "$EX/coldstart" "$BIN" 5003 20
"$EX/memory" 10000 100000

echo
echo "Streaming (ask_agent, Echo agent, ${STREAM_ROUNDS:-30} rounds):"
"${ON_CLIENT[@]}" "$EX/stream" http://127.0.0.1:18090 "$WS" "$KEY" http://127.0.0.1:5001/mcp "${TOKENS[0]}" "${STREAM_ROUNDS:-30}"
