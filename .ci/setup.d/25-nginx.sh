#!/usr/bin/env bash
# nginx (TLS, HTTP/2) and openssl for the cluster test (tests/all/cluster.rs): two instances behind
# deploy/nginx/mcp-dust-server.conf.template with a throwaway certificate. The test starts its
# own nginx in a temporary directory; the packaged service is not used.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends nginx-light openssl >/dev/null 2>&1 \
  || apt-get install -y -qq --no-install-recommends nginx openssl >/dev/null
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx >/dev/null 2>&1 || true
fi
command -v nginx >/dev/null
