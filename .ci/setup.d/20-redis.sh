#!/usr/bin/env bash
# redis-server for the shared-state tests (tests/all/shared_state.rs: J9, R8, Redis outages).
# The tests start their own server on a free loopback port; nothing runs as a service here.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# Debian starts the packaged service where an init system runs; the tests do not need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl stop redis-server >/dev/null 2>&1 || true
fi
command -v redis-server >/dev/null
