#!/usr/bin/env bash
# Build the pinned Pulumi YAML language host (pulumi-language-yaml) from Go modules (offline-capable:
# only the Go module proxy is used). Usage: bash build.sh OUT_DIR
# OUT_DIR receives: pulumi-language-yaml.
# See NOTES.md for what is pinned and why.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh" yaml
out_dir_arg "$@"
go_env

# Pins (go.mod/go.sum hold the full module graph; these are checked against it below).
YAML_VERSION=v1.25.0
PULUMI_SDK_VERSION=v3.206.0 # what pulumi-yaml v1.25.0's go.mod requires for pkg/v3 and sdk/v3
HOST_PKG=github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml
# As in upstream's .goreleaser.yml (CGO_ENABLED=0 comes from go_env; no build tags upstream).
LDFLAGS="-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=${YAML_VERSION}"

check_version() { # module expected
  local got
  got="$(go -C "$here" list -m -f '{{.Version}}' "$1")" || fail "cannot resolve $1 from $here/go.mod"
  [ "$got" = "$2" ] || fail "$1 resolves to $got, expected $2 (go.mod out of sync)"
}
check_version github.com/pulumi/pulumi-yaml "$YAML_VERSION"
check_version github.com/pulumi/pulumi/pkg/v3 "$PULUMI_SDK_VERSION"
check_version github.com/pulumi/pulumi/sdk/v3 "$PULUMI_SDK_VERSION"

# Download only the module zips the main package needs (go.sum must already list them).
download() {
  go -C "$here" list -deps -f '{{if .Module}}{{.Module.Path}}{{end}}' "$HOST_PKG" >/dev/null
}
run_step "downloading modules" download

run_step "building pulumi-language-yaml ${YAML_VERSION}" go build -C "$here" -trimpath -p 2 \
  -ldflags "$LDFLAGS" -o "$out/pulumi-language-yaml" "$HOST_PKG"

# The host has no -version flag (it reports the stamp only over gRPC, in GetPluginInfo, which
# `pulumi about` shows; -trimpath keeps -ldflags out of `go version -m`): check that it starts and
# prints the port of its gRPC server on stdout (what the engine reads), then stop it.
start_check="$(mktemp "${TMPDIR:-/tmp}/yaml-start.XXXXXX")"
trap 'rm -f "$start_check"' EXIT
"$out/pulumi-language-yaml" >"$start_check" 2>&1 &
host_pid=$!
for _ in $(seq 100); do
  grep -qE '^[0-9]+$' "$start_check" && break
  kill -0 "$host_pid" 2>/dev/null || break
  sleep 0.1
done
port="$(grep -E '^[0-9]+$' "$start_check" | head -n 1 || true)"
kill "$host_pid" 2>/dev/null || true
wait "$host_pid" 2>/dev/null || true
[ -n "$port" ] || fail "built pulumi-language-yaml does not start (output: $(head -c 500 "$start_check"))"
log "pulumi-language-yaml starts (served on port $port, stopped)"

log "OK in $out: pulumi-language-yaml ${YAML_VERSION} ($(du -h "$out/pulumi-language-yaml" | cut -f1))"
