# What bench/run.sh, bench/ab.sh and bench/profile.sh share; sourced by them, not run.
# The simulator listens on 127.0.0.1:18090 and the server on 127.0.0.1:5001 in all three.

WS=benchws0001
KEY=sk-0123456789abcdef0123456789abcdef
SIMAPI=http://127.0.0.1:18090/api/v1/w/$WS

# Everything a script starts goes in `pids` and is stopped when it exits.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

# Waits until the simulator answers an authenticated request.
wait_for_sim() {
  for _ in $(seq 1 200); do
    curl -sf -o /dev/null -H "Authorization: Bearer $KEY" "$SIMAPI/spaces" && return 0
    sleep 0.05
  done
  echo "no answer from the simulator" >&2; exit 1
}

# Sets SPACE and DS: the simulator's first space and its first data source.
first_data_source() {
  SPACE=$(curl -sf -H "Authorization: Bearer $KEY" "$SIMAPI/spaces" | jq -r '.spaces[0].sId')
  DS=$(curl -sf -H "Authorization: Bearer $KEY" "$SIMAPI/spaces/$SPACE/data_sources" | jq -r '.data_sources[0].sId')
}

# A token from the server for the simulator key $1.
login() {
  curl -sf -X POST http://127.0.0.1:5001/api/v1/auth/login -H 'Content-Type: application/json' \
    -d "{\"apiKey\":\"$1\",\"workspaceId\":\"$WS\"}" | jq -r .token
}

# Sets ON_SERVER and ON_CLIENT, the command prefixes that run a program on SERVER_CPUS (default
# 0) or CLIENT_CPUS (default 1), with one tokio worker per CPU of the list ("0", "0,2", "0-1").
# `env` and `taskset` exec the program, so `$!` after `"${ON_SERVER[@]}" prog &` is its pid.
pin() {
  SERVER_CPUS=${SERVER_CPUS:-0}
  CLIENT_CPUS=${CLIENT_CPUS:-1}
  cpus() { python3 -c 'import sys; print(sum(len(range(int(a), int(b) + 1)) if b else 1 for a, _, b in (p.partition("-") for p in sys.argv[1].split(","))))' "$1"; }
  ON_SERVER=(env TOKIO_WORKER_THREADS="$(cpus "$SERVER_CPUS")" taskset -c "$SERVER_CPUS")
  ON_CLIENT=(env TOKIO_WORKER_THREADS="$(cpus "$CLIENT_CPUS")" taskset -c "$CLIENT_CPUS")
}
