#!/usr/bin/env bash
# Build pulumi-resource-kubernetes from the pinned provider module (see NOTES.md).
#   usage: bash build.sh OUT_DIR
# Result: OUT_DIR/pulumi-resource-kubernetes
set -euo pipefail

# What go.mod pins. The Go module proxy serves github.com/pulumi/pulumi-kubernetes/provider/v4
# ONLY at this pseudo-version (= the v4.25.0 release commit f47bc2d6f199); see NOTES.md.
PROVIDER_MOD=github.com/pulumi/pulumi-kubernetes/provider/v4
PROVIDER_PSEUDO=v4.0.0-20260115033456-f47bc2d6f199
PROVIDER_VERSION=4.25.0 # release of that commit; written into the schema and the version stamp

log() { echo "[kubernetes] $*"; }
die() { echo "[kubernetes] ERROR: $*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: bash build.sh OUT_DIR"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

command -v go >/dev/null || die "go not found on PATH"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
log "using $(go version)"

t_all=$SECONDS

# Scratch dir OUTSIDE the repo for generated files; removed on exit.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/work-kubernetes.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
case "$scratch" in "$here"/*) die "scratch dir $scratch is inside the repo";; esac
case "$scratch$here" in *'"'*|*'\'*) die "paths with quotes or backslashes are not supported";; esac

t=$SECONDS
log "downloading modules..."
go -C "$here" mod download || die "go mod download failed (module proxy reachable? go.sum complete?)"
log "downloading modules done in $((SECONDS - t))s"

got="$(go -C "$here" list -m -f '{{.Version}}' "$PROVIDER_MOD")" || die "cannot resolve $PROVIDER_MOD"
[ "$got" = "$PROVIDER_PSEUDO" ] || die "go.mod pins $PROVIDER_MOD@$got, build.sh expects $PROVIDER_PSEUDO (update PROVIDER_* in build.sh)"
moddir="$(go -C "$here" list -m -f '{{.Dir}}' "$PROVIDER_MOD")"
src="$moddir/cmd/pulumi-resource-kubernetes"
[ -f "$src/schema.json" ] && [ -f "$src/terraform-mapping.json" ] || die "schema.json/terraform-mapping.json missing in $src"

t=$SECONDS
log "generating schema-embed.json (version $PROVIDER_VERSION) and terraform-mapping-embed.json into $scratch..."
go -C "$here" build -trimpath -p 2 -o "$scratch/k8s-schema-embed" ./cmd/k8s-schema-embed
"$scratch/k8s-schema-embed" -version "$PROVIDER_VERSION" -in "$src" -out "$scratch"
# Map the generated files into our main package without writing into the repo.
pkgdir="$here/cmd/pulumi-resource-kubernetes"
cat >"$scratch/overlay.json" <<EOF
{"Replace":{
  "$pkgdir/schema-embed.json":"$scratch/schema-embed.json",
  "$pkgdir/terraform-mapping-embed.json":"$scratch/terraform-mapping-embed.json"
}}
EOF
log "generating done in $((SECONDS - t))s"

t=$SECONDS
log "building pulumi-resource-kubernetes $PROVIDER_VERSION..."
go -C "$here" build -trimpath -p 2 -overlay "$scratch/overlay.json" \
  -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PROVIDER_VERSION" \
  -o "$out/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
log "building done in $((SECONDS - t))s"

[ -x "$out/pulumi-resource-kubernetes" ] || die "binary not produced"
log "wrote $out/pulumi-resource-kubernetes ($(du -h "$out/pulumi-resource-kubernetes" | cut -f1)); total $((SECONDS - t_all))s"
