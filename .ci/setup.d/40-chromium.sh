#!/usr/bin/env bash
# The browser end-to-end test (tests/all/browser.rs): Debian's Chromium, driven by playwright-core
# from tests/browser (Node from the machine, package versions pinned in its package-lock.json).
# Idempotent and quiet on success: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-dejavu-core >/dev/null
fi

# playwright-core ships no browser and downloads none: it drives the chromium installed above.
lock=tests/browser/package-lock.json
stamp=tests/browser/node_modules/.lock-installed
if [ ! -f "$stamp" ] || ! cmp -s "$lock" "$stamp"; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$lock" "$stamp"
fi
