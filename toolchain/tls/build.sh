#!/usr/bin/env bash
# Builds the Pulumi "tls" resource plugin (pulumi-resource-tls, reporting
# version 5.6.2 to match the pinned pulumi-tls==5.6.2 Python SDK) from Go
# modules only. See NOTES.md for what is pinned and why.
#
#   bash build.sh OUT_DIR
#
# Result: OUT_DIR/pulumi-resource-tls
# Generated files (schema, bridge metadata, the schema generator binary) go to
# a scratch directory outside the repository (TLS_WORK_DIR, default: a fresh
# mktemp -d that is removed on exit).
set -euo pipefail

TLS_VERSION=5.6.2 # version of the pulumi-tls release this plugin stands in for

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[tls] $*"; }
die() { echo "[tls] ERROR: $*" >&2; exit 1; }

[[ $# -eq 1 && -n "$1" ]] || die "usage: bash build.sh OUT_DIR"
command -v go >/dev/null || die "go not found on PATH"
mkdir -p "$1" || die "cannot create OUT_DIR $1"
out="$(cd "$1" && pwd)"

repo_top="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || echo "$here")"
if [[ -n "${TLS_WORK_DIR:-}" ]]; then
  mkdir -p "$TLS_WORK_DIR"
  work="$(cd "$TLS_WORK_DIR" && pwd)"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/tls-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
case "$work/" in
  "$repo_top"/*) die "scratch dir $work is inside the repository $repo_top" ;;
esac

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
ldflags="-s -w -X istio-ca.local/toolchain/tls/provider.Version=${TLS_VERSION}"
gobuild() { go build -C "$here" -trimpath -p 2 -ldflags "$ldflags" "$@"; }

t0=$SECONDS; step=$SECONDS
took() { echo "[tls]   took $((SECONDS - step))s"; step=$SECONDS; }

log "go: $(go version)"
log "downloading modules..."
# Only the modules that provide packages for the two commands; go.sum must
# already hold their hashes (no -mod=mod: a missing entry is a hard error).
go -C "$here" list -deps -e -f '{{with .Module}}{{.Path}}{{end}}' \
    ./cmd/pulumi-tfgen-tls ./cmd/pulumi-resource-tls >/dev/null \
  || die "module download failed"
took

log "building schema generator (pulumi-tfgen-tls)..."
gobuild -o "$work/bin/pulumi-tfgen-tls" ./cmd/pulumi-tfgen-tls || die "building pulumi-tfgen-tls failed"
took

log "generating schema.json and bridge-metadata.json in $work/gen..."
rm -rf "$work/gen" "$work/embed"
mkdir -p "$work/gen" "$work/embed"
# tfgen reads the upstream docs from the terraform-provider-tls module, found
# by running `go mod download -json <module>` in ./provider (it appends
# "provider" to the cwd), i.e. with our go.mod.
# --skip-examples: HCL example conversion needs converter plugins we do not have.
(cd "$here/provider" && "$work/bin/pulumi-tfgen-tls" schema --out "$work/gen" --skip-examples) \
  >"$work/tfgen.log" 2>&1 || { cat "$work/tfgen.log" >&2; die "schema generation failed"; }
[[ -s "$work/gen/schema.json" ]] || { cat "$work/tfgen.log" >&2; die "tfgen wrote no schema.json"; }
[[ -s "$work/gen/bridge-metadata.json" ]] || die "tfgen wrote no bridge-metadata.json"
"$work/bin/pulumi-tfgen-tls" embed-schema "$work/gen/schema.json" "$work/embed/schema-embed.json" \
  || die "embed-schema failed"
cp "$work/gen/bridge-metadata.json" "$work/embed/bridge-metadata.json"
grep -q "\"version\":\"${TLS_VERSION}\"" "$work/embed/schema-embed.json" \
  || die "schema-embed.json does not carry version ${TLS_VERSION}"
for prop in caPrivateKeyPemWo caPrivateKeyPemWoVersion; do
  grep -q "\"$prop\"" "$work/embed/schema-embed.json" || die "schema lacks LocallySignedCert.$prop"
done
took

log "building pulumi-resource-tls..."
cmd_dir="$here/cmd/pulumi-resource-tls"
cat >"$work/overlay.json" <<EOF
{"Replace": {
  "$cmd_dir/schema-embed.json": "$work/embed/schema-embed.json",
  "$cmd_dir/bridge-metadata.json": "$work/embed/bridge-metadata.json"
}}
EOF
gobuild -overlay "$work/overlay.json" -o "$out/pulumi-resource-tls" ./cmd/pulumi-resource-tls \
  || die "building pulumi-resource-tls failed"
took

got="$("$out/pulumi-resource-tls" -version)" || die "pulumi-resource-tls -version failed"
[[ "$got" == "$TLS_VERSION" ]] || die "pulumi-resource-tls -version printed '$got', want $TLS_VERSION"
log "built $out/pulumi-resource-tls (version $got, $(du -h "$out/pulumi-resource-tls" | cut -f1)) in $((SECONDS - t0))s"
