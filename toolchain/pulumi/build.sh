#!/usr/bin/env bash
# Build the pinned Pulumi CLI and a Python language host from Go modules (offline-capable:
# only the Go module proxy is used). Usage: bash build.sh OUT_DIR
# OUT_DIR receives: pulumi, pulumi-language-python, pulumi-language-python-exec.
# See NOTES.md for what is pinned and why.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh" pulumi
out_dir_arg "$@"
go_env

# Pins (go.mod/go.sum hold the full module graph; these are checked against it below).
PULUMI_VERSION=v3.274.0
CLI_PKG=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
HOST_PKG=istio-ca.local/toolchain/pulumi/pylanghost
TAGS=osusergo,grpcnotrace
LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${PULUMI_VERSION}"

for m in github.com/pulumi/pulumi/pkg/v3 github.com/pulumi/pulumi/sdk/v3; do
  got="$(go -C "$here" list -m -f '{{.Version}}' "$m")" || fail "cannot resolve $m from $here/go.mod"
  [ "$got" = "$PULUMI_VERSION" ] || fail "$m resolves to $got, expected $PULUMI_VERSION (go.mod out of sync)"
done

# Download only the module zips the two main packages need (go.sum must already list them).
download() {
  go -C "$here" list -deps -tags "$TAGS" -f '{{if .Module}}{{.Module.Path}}{{end}}' "$CLI_PKG" "$HOST_PKG" >/dev/null
}
run_step "downloading modules" download

run_step "building pulumi CLI ${PULUMI_VERSION}" go build -C "$here" -trimpath -p 2 -tags "$TAGS" \
  -ldflags "$LDFLAGS" -o "$out/pulumi" "$CLI_PKG"

run_step "building pulumi-language-python (own host, ./pylanghost)" go build -C "$here" -trimpath -p 2 -tags "$TAGS" \
  -ldflags "$LDFLAGS" -o "$out/pulumi-language-python" "$HOST_PKG"

# The language host runs this Python script (shipped in the sdk/v3 module zip) and looks for it
# next to its own binary. Module-cache files are read-only without an exec bit: copy, then chmod.
sdk_dir="$(go -C "$here" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
exec_src="$sdk_dir/python/cmd/pulumi-language-python-exec"
[ -f "$exec_src" ] || fail "executor script not found at $exec_src"
rm -f "$out/pulumi-language-python-exec"
cp "$exec_src" "$out/pulumi-language-python-exec"
chmod 0755 "$out/pulumi-language-python-exec"
log "copied pulumi-language-python-exec from $exec_src"

got="$("$out/pulumi" version)" || fail "built pulumi does not run"
[ "$got" = "$PULUMI_VERSION" ] || fail "pulumi version prints '$got', expected $PULUMI_VERSION"
got="$("$out/pulumi-language-python" -version)" || fail "built pulumi-language-python does not run"
[ "$got" = "$PULUMI_VERSION" ] || fail "pulumi-language-python -version prints '$got', expected $PULUMI_VERSION"

log "OK in $out: $(cd "$out" && du -h pulumi pulumi-language-python pulumi-language-python-exec | awk '{printf "%s (%s) ", $2, $1}')"
