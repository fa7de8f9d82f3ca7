#!/usr/bin/env bash
# Build the pinned Pulumi CLI, a Python language host and a TypeScript SDK generator from Go modules
# (offline-capable: only the Go module proxy is used). Usage: bash build.sh OUT_DIR
# OUT_DIR receives: pulumi, pulumi-language-python, pulumi-language-python-exec, pulumi-nodejs-sdkgen.
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
SDKGEN_PKG=istio-ca.local/toolchain/pulumi/nodejs-sdkgen
TAGS=osusergo,grpcnotrace
LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${PULUMI_VERSION}"

for m in github.com/pulumi/pulumi/pkg/v3 github.com/pulumi/pulumi/sdk/v3; do
  got="$(go -C "$here" list -m -f '{{.Version}}' "$m")" || fail "cannot resolve $m from $here/go.mod"
  [ "$got" = "$PULUMI_VERSION" ] || fail "$m resolves to $got, expected $PULUMI_VERSION (go.mod out of sync)"
done

# Download only the module zips the three main packages need (go.sum must already list them).
download() {
  go -C "$here" list -deps -tags "$TAGS" -f '{{if .Module}}{{.Module.Path}}{{end}}' "$CLI_PKG" "$HOST_PKG" "$SDKGEN_PKG" >/dev/null
}
run_step "downloading modules" download

run_step "building pulumi CLI ${PULUMI_VERSION}" go build -C "$here" -trimpath -p 2 -tags "$TAGS" \
  -ldflags "$LDFLAGS" -o "$out/pulumi" "$CLI_PKG"

run_step "building pulumi-language-python (own host, ./pylanghost)" go build -C "$here" -trimpath -p 2 -tags "$TAGS" \
  -ldflags "$LDFLAGS" -o "$out/pulumi-language-python" "$HOST_PKG"

run_step "building pulumi-nodejs-sdkgen (./nodejs-sdkgen)" go build -C "$here" -trimpath -p 2 -tags "$TAGS" \
  -ldflags "$LDFLAGS" -o "$out/pulumi-nodejs-sdkgen" "$SDKGEN_PKG"

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

got="$("$out/pulumi-nodejs-sdkgen" -version)" || fail "built pulumi-nodejs-sdkgen does not run"
[ "$got" = "$PULUMI_VERSION" ] || fail "pulumi-nodejs-sdkgen -version prints '$got', expected $PULUMI_VERSION"
# A smoke run on a one-component schema that references no other package (so no provider plugin is needed).
smoke="$(mktemp -d)"
trap 'rm -rf "$smoke"' EXIT
cat >"$smoke/schema.json" <<'JSON'
{"name": "smoke", "version": "0.0.1", "resources": {"smoke:index:Thing": {"isComponent": true,
  "inputProperties": {"size": {"type": "integer"}}, "requiredInputs": ["size"],
  "properties": {"label": {"type": "string"}}, "required": ["label"]}}}
JSON
(cd "$smoke" && PULUMI_HOME="$smoke/home" "$out/pulumi-nodejs-sdkgen" schema.json sdk) \
  || fail "pulumi-nodejs-sdkgen failed on a minimal schema"
grep -q 'size: pulumi.Input<number>' "$smoke/sdk/thing.ts" \
  || fail "pulumi-nodejs-sdkgen's smoke SDK lacks ThingArgs.size: $(ls "$smoke/sdk")"

log "OK in $out: $(cd "$out" && du -h pulumi pulumi-language-python pulumi-language-python-exec pulumi-nodejs-sdkgen | awk '{printf "%s (%s) ", $2, $1}')"
