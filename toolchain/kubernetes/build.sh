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

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh" kubernetes
out_dir_arg "$@"
go_env

# Scratch dir OUTSIDE the repo for generated files; removed on exit.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/work-kubernetes.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
case "$scratch" in "$here"/*) fail "scratch dir $scratch is inside the repo" ;; esac
case "$scratch$here" in *'"'* | *\\*) fail "paths with quotes or backslashes are not supported" ;; esac

run_step "downloading modules" go -C "$here" mod download

got="$(go -C "$here" list -m -f '{{.Version}}' "$PROVIDER_MOD")" || fail "cannot resolve $PROVIDER_MOD"
[ "$got" = "$PROVIDER_PSEUDO" ] || fail "go.mod pins $PROVIDER_MOD@$got, build.sh expects $PROVIDER_PSEUDO (update PROVIDER_* in build.sh)"
moddir="$(go -C "$here" list -m -f '{{.Dir}}' "$PROVIDER_MOD")"
src="$moddir/cmd/pulumi-resource-kubernetes"
if [ ! -f "$src/schema.json" ] || [ ! -f "$src/terraform-mapping.json" ]; then
  fail "schema.json/terraform-mapping.json missing in $src"
fi

step "generating schema-embed.json (version $PROVIDER_VERSION) and terraform-mapping-embed.json into $scratch"
go -C "$here" build -trimpath -p 2 -o "$scratch/k8s-schema-embed" ./cmd/k8s-schema-embed
"$scratch/k8s-schema-embed" -version "$PROVIDER_VERSION" -in "$src" -out "$scratch"
# Map the generated files into our main package without writing into the repo.
pkgdir="$here/cmd/pulumi-resource-kubernetes"
cat >"$scratch/overlay.json" <<JSON
{"Replace":{
  "$pkgdir/schema-embed.json":"$scratch/schema-embed.json",
  "$pkgdir/terraform-mapping-embed.json":"$scratch/terraform-mapping-embed.json"
}}
JSON
done_step

run_step "building pulumi-resource-kubernetes $PROVIDER_VERSION" go -C "$here" build -trimpath -p 2 \
  -overlay "$scratch/overlay.json" \
  -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PROVIDER_VERSION" \
  -o "$out/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes

[ -x "$out/pulumi-resource-kubernetes" ] || fail "binary not produced"
log "OK: $out/pulumi-resource-kubernetes ($(du -h "$out/pulumi-resource-kubernetes" | cut -f1)) in ${SECONDS}s"
