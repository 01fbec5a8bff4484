#!/usr/bin/env bash
# A/B of server builds (docs/PERFORMANCE.md, "Before and after"): each variant is started in
# turn on the same pinned core and measured on the same scenarios, the variants alternating
# PAIRS times so that a drift of the machine falls on all of them alike; medians per variant.
#
#   bench/ab.sh base=/tmp/base/mcp-dust-server new=target/release/mcp-dust-server
#   bench/ab.sh glibc=target/release/mcp-dust-server \
#       "mimalloc=env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 target/release/mcp-dust-server"
#
# A variant is NAME=COMMAND, where COMMAND (split on spaces) runs the server binary; `serve` is
# appended. The simulator and the load generator come from this tree's release build (BUILD=0:
# as they are), pinned to CLIENT_CPUS (default 1); the server runs on SERVER_CPUS (default 0)
# with one tokio worker per CPU. PAIRS (default 3), DURATION (s, default 5), CONC (default 8).
# Ports 18090 and 5001 must be free.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 2 ] || { echo "usage: bench/ab.sh NAME=COMMAND NAME=COMMAND [...]" >&2; exit 2; }
PAIRS=${PAIRS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONC=${CONC:-8}
OUT=${OUT:-target/bench}
mkdir -p "$OUT"
RAW="$OUT/ab.raw"
: >"$RAW"
[ "${BUILD:-1}" = 0 ] || cargo build --release --quiet --bin mcp-dust-server --examples
SIM_BIN=${SIM_BIN:-target/release/mcp-dust-server}
EX=${EX_DIR:-target/release/examples}

# shellcheck source=bench/common.sh
. bench/common.sh
pin

"${ON_CLIENT[@]}" "$SIM_BIN" sim --listen 127.0.0.1:18090 --workspace-id "$WS" --api-key "$KEY" \
  >"$OUT/sim.log" 2>&1 &
pids+=("$!")
wait_for_sim
first_data_source
SEARCH="{\"query\":\"vacation policy\",\"knowledgeBaseId\":\"$DS\",\"topK\":8}"

# One variant: start it, log in, measure each scenario, stop it.
measure() {
  local name=$1 cmd=$2
  # shellcheck disable=SC2086 # the command is a list of words
  DUST_BASE_URL=http://127.0.0.1:18090 DUST_WORKSPACE_ID=$WS MCP_SERVER_PORT=5001 \
    RATE_LIMIT_MAX=1000000000 LOG_LEVEL=warn AUDIT_LOG_FILE="$OUT/ab-audit.log" \
    "${ON_SERVER[@]}" $cmd serve >"$OUT/ab-serve.log" 2>&1 &
  local srv=$!
  wait_for http://127.0.0.1:5001/live
  local token
  token=$(login "$KEY")
  local lg=("${ON_CLIENT[@]}" "$EX/loadgen" --url http://127.0.0.1:5001/mcp --mode mcp2026
    --pid "$srv" --concurrency "$CONC" --duration "$DURATION" --warmup "$WARMUP")
  LOADGEN_TOKEN=$token "${lg[@]}" --label "$name|tools/list" --method tools/list | tee -a "$RAW"
  LOADGEN_TOKEN=$token "${lg[@]}" --label "$name|list_agents" --method tools/call --tool list_agents | tee -a "$RAW"
  LOADGEN_TOKEN=$token "${lg[@]}" --label "$name|search_knowledge" --method tools/call \
    --tool search_knowledge --arguments "$SEARCH" | tee -a "$RAW"
  kill "$srv"; wait "$srv" 2>/dev/null || true
}

for pair in $(seq 1 "$PAIRS"); do
  echo "## pair $pair ($(uptime | sed 's/.*load/load/'))" >&2
  for variant in "$@"; do measure "${variant%%=*}" "${variant#*=}"; done
done

echo
echo "Medians over $PAIRS alternations (c=$CONC, ${DURATION} s each; server on CPU $SERVER_CPUS, load on CPU $CLIENT_CPUS):"
python3 - "$RAW" "${@%%=*}" <<'PY'
import sys, statistics, collections
names = sys.argv[2:]
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    # The label holds "variant|scenario", so a row has one cell more than loadgen's ten.
    if len(cells) != 11:
        continue
    runs[(cells[0], cells[1])].append(cells)
scenarios = list(dict.fromkeys(s for (_, s) in runs))
print("| scenario | " + " | ".join(f"{n} req/s | {n} p50 ms | {n} p99 ms" for n in names) + " | ratio |")
print("|---|" + "---|" * (3 * len(names) + 1))
for s in scenarios:
    cols, rps = [], []
    for n in names:
        rows = runs.get((n, s), [])
        med = lambda i: statistics.median(float(r[i]) for r in rows) if rows else float('nan')
        rps.append(med(5))
        cols.append(f"{med(5):.0f} | {med(6):.3f} | {med(8):.3f}")
    ratio = " / ".join(f"{r / rps[0]:.2f}" for r in rps[1:])
    print(f"| {s} | " + " | ".join(cols) + f" | {ratio} |")
PY
