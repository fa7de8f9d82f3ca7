#!/usr/bin/env bash
# `make up`: the shipped dev stack in one command, on a fresh clone, online or offline.
#
# The state lives in .pulumi-state/ inside the project (git-ignored) and is encrypted with a
# DEVELOPMENT passphrase that is printed right here, i.e. public: it protects nothing. So this only
# runs the shipped `dev` stack, and only while no cluster in it has a kubeconfig (render mode: the
# manifests go to rendered/<cluster>/). For real clusters and a real passphrase or KMS, follow the
# README's manual steps with a stack of your own.
#
# Uses `pulumi` from PATH if there is one; otherwise builds (or reuses) the offline toolchain and
# installs its provider plugins into .pulumi-state/home. Running it again changes nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly stack=dev
readonly state="$PWD/.pulumi-state"
readonly development_passphrase="istio-ca-development-only-NOT-SECRET"
log() { echo "[make up] $*" >&2; }
fail() { echo "[make up] ERROR: $*" >&2; exit 1; }

if [ -n "${PULUMI_STACK:-}" ] && [ "$PULUMI_STACK" != "$stack" ]; then
  fail "PULUMI_STACK=$PULUMI_STACK: make up runs only the shipped '$stack' stack (its passphrase is public)"
fi
# Any kubeconfig would point the public passphrase's keys at a real cluster.
if grep -Eq '^[^#]*kubeconfig' "Pulumi.$stack.yaml"; then
  fail "Pulumi.$stack.yaml sets a kubeconfig: make up encrypts with a public development passphrase, so it only
renders manifests. For real clusters follow the README's manual steps with your own stack and passphrase."
fi

export PULUMI_BACKEND_URL="file://$state"
export PULUMI_CONFIG_PASSPHRASE="$development_passphrase"
export PULUMI_SKIP_UPDATE_CHECK=true
mkdir -p "$state"

if ! command -v pulumi >/dev/null; then
  log "no pulumi on PATH: using the offline toolchain (the first build takes a while; later runs reuse it)"
  toolchain="$(bash toolchain/build.sh)"
  export PATH="$toolchain/bin:$PATH"
  export PULUMI_HOME="$state/home" PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  for plugin in tls kubernetes; do
    version="$(.venv/bin/python -c "import json, importlib.resources as r; print(json.loads((r.files('pulumi_$plugin') / 'pulumi-plugin.json').read_text())['version'])")"
    if ! pulumi plugin ls --json 2>/dev/null | grep -q "\"name\": \"$plugin\""; then
      log "installing the $plugin $version plugin from $toolchain"
      pulumi plugin install resource "$plugin" "$version" --file "$toolchain/providers/pulumi-resource-$plugin" >&2
    fi
  done
fi

pulumi stack select --create "$stack" --secrets-provider passphrase --non-interactive >&2
pulumi up --yes --stack "$stack" --non-interactive

echo
echo "Each cluster's cacerts Secret is rendered, not applied (mode 0600: it holds the intermediate's key)."
echo "To install one into a cluster, with that cluster's kubeconfig:"
for manifest in rendered/*/1-manifest/*cacerts*.yaml; do
  [ -e "$manifest" ] || fail "no rendered cacerts manifest under rendered/"
  cluster="${manifest#rendered/}"
  echo "  ${cluster%%/*}: kubectl apply -f $manifest"
done
