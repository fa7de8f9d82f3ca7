#!/usr/bin/env bash
# Build the pinned Pulumi CLI and a Python language host from Go modules (offline-capable:
# only the Go module proxy is used). Usage: bash build.sh OUT_DIR
# OUT_DIR receives: pulumi, pulumi-language-python, pulumi-language-python-exec.
# See NOTES.md for what is pinned and why.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: bash build.sh OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1"
OUT_DIR="$(cd "$1" && pwd)"

# Pins (go.mod/go.sum hold the full module graph; these are checked against it below).
PULUMI_VERSION=v3.274.0
CLI_PKG=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
HOST_PKG=istio-ca.local/toolchain/pulumi/pylanghost
TAGS=osusergo,grpcnotrace
LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${PULUMI_VERSION}"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { echo "[pulumi] $*"; }
die() { echo "[pulumi] ERROR: $*" >&2; exit 1; }
step() { # step "description" cmd...
  local what="$1"; shift
  local t0=$SECONDS
  log "$what..."
  "$@" || die "$what failed (exit $?)"
  log "$what done in $((SECONDS - t0))s"
}

command -v go >/dev/null || die "go not found on PATH"
log "go: $(go version)"

for m in github.com/pulumi/pulumi/pkg/v3 github.com/pulumi/pulumi/sdk/v3; do
  got="$(go -C "$here" list -m -f '{{.Version}}' "$m")" || die "cannot resolve $m from $here/go.mod"
  [ "$got" = "$PULUMI_VERSION" ] || die "$m resolves to $got, expected $PULUMI_VERSION (go.mod out of sync)"
done

# Download only the module zips the two main packages need (go.sum must already list them).
download() {
  go -C "$here" list -deps -tags "$TAGS" -f '{{if .Module}}{{.Module.Path}}{{end}}' "$CLI_PKG" "$HOST_PKG" >/dev/null
}
step "downloading modules" download

step "building pulumi CLI ${PULUMI_VERSION}" go build -C "$here" -trimpath -p 2 -tags "$TAGS" \
  -ldflags "$LDFLAGS" -o "$OUT_DIR/pulumi" "$CLI_PKG"

step "building pulumi-language-python (own host, ./pylanghost)" go build -C "$here" -trimpath -p 2 -tags "$TAGS" \
  -ldflags "$LDFLAGS" -o "$OUT_DIR/pulumi-language-python" "$HOST_PKG"

# The language host runs this Python script (shipped in the sdk/v3 module zip) and looks for it
# next to its own binary. Module-cache files are read-only without an exec bit: copy, then chmod.
sdk_dir="$(go -C "$here" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
exec_src="$sdk_dir/python/cmd/pulumi-language-python-exec"
[ -f "$exec_src" ] || die "executor script not found at $exec_src"
rm -f "$OUT_DIR/pulumi-language-python-exec"
cp "$exec_src" "$OUT_DIR/pulumi-language-python-exec"
chmod 0755 "$OUT_DIR/pulumi-language-python-exec"
log "copied pulumi-language-python-exec from $exec_src"

got="$("$OUT_DIR/pulumi" version)" || die "built pulumi does not run"
[ "$got" = "$PULUMI_VERSION" ] || die "pulumi version prints '$got', expected $PULUMI_VERSION"
got="$("$OUT_DIR/pulumi-language-python" -version)" || die "built pulumi-language-python does not run"
[ "$got" = "$PULUMI_VERSION" ] || die "pulumi-language-python -version prints '$got', expected $PULUMI_VERSION"

log "OK: $(cd "$OUT_DIR" && ls -l pulumi pulumi-language-python pulumi-language-python-exec | awk '{print $5, $9}' | tr '\n' ' ')"
