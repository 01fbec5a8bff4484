#!/usr/bin/env bash
# redis-server for the shared-state tests (tests/all/shared_state.rs: J9, R8, Redis outages), and
# redis-cli (package redis-tools, a dependency of redis-server) for the Redis Cluster tests
# (tests/all/redis_cluster.rs: `redis-cli --cluster create`). The tests start their own servers
# on free loopback ports; nothing runs as a service here.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
# Debian starts the packaged service where an init system runs; the tests do not need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl stop redis-server >/dev/null 2>&1 || true
fi
command -v redis-server >/dev/null
command -v redis-cli >/dev/null
