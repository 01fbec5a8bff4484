#!/usr/bin/env bash
# Makes the RustSec snapshot in ../shared/advisory-db usable by `cargo deny --offline`: cargo-deny
# wants a git repository at target/advisory-dbs/<name derived from the upstream URL>.
set -euo pipefail
cd "$(dirname "$0")/.."
src=../shared/advisory-db
dest=target/advisory-dbs/advisory-db-3157b0e258782691
if [ ! -d "$src/crates" ]; then
  echo "advisory snapshot not found at $src" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
cp -r "$src"/. "$dest"/
chmod -R u+w "$dest"
git -C "$dest" init -q
git -C "$dest" add -A
git -C "$dest" -c user.name=ci -c user.email=ci@localhost commit -qm snapshot
