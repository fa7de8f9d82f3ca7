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
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh" tls
out_dir_arg "$@"
go_env

repo_top="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || echo "$here")"
if [[ -n "${TLS_WORK_DIR:-}" ]]; then
  mkdir -p "$TLS_WORK_DIR"
  work="$(cd "$TLS_WORK_DIR" && pwd)"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/tls-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
case "$work/" in
  "$repo_top"/*) fail "scratch dir $work is inside the repository $repo_top" ;;
esac

ldflags="-s -w -X istio-ca.local/toolchain/tls/provider.Version=${TLS_VERSION}"
gobuild() { go build -C "$here" -trimpath -p 2 -ldflags "$ldflags" "$@"; }

# Only the modules that provide packages for the two commands; go.sum must
# already hold their hashes (no -mod=mod: a missing entry is a hard error).
run_step "downloading modules" go -C "$here" list -deps -e -f '{{with .Module}}{{.Path}}{{end}}' \
  ./cmd/pulumi-tfgen-tls ./cmd/pulumi-resource-tls >/dev/null

run_step "building schema generator (pulumi-tfgen-tls)" gobuild -o "$work/bin/pulumi-tfgen-tls" ./cmd/pulumi-tfgen-tls

step "generating schema.json and bridge-metadata.json in $work/gen"
rm -rf "$work/gen" "$work/embed"
mkdir -p "$work/gen" "$work/embed"
# tfgen reads the upstream docs from the terraform-provider-tls module, found
# by running `go mod download -json <module>` in ./provider (it appends
# "provider" to the cwd), i.e. with our go.mod.
# --skip-examples: HCL example conversion needs converter plugins we do not have.
(cd "$here/provider" && "$work/bin/pulumi-tfgen-tls" schema --out "$work/gen" --skip-examples) \
  >"$work/tfgen.log" 2>&1 || { cat "$work/tfgen.log" >&2; fail "schema generation failed"; }
[[ -s "$work/gen/schema.json" ]] || { cat "$work/tfgen.log" >&2; fail "tfgen wrote no schema.json"; }
[[ -s "$work/gen/bridge-metadata.json" ]] || fail "tfgen wrote no bridge-metadata.json"
"$work/bin/pulumi-tfgen-tls" embed-schema "$work/gen/schema.json" "$work/embed/schema-embed.json" \
  || fail "embed-schema failed"
cp "$work/gen/bridge-metadata.json" "$work/embed/bridge-metadata.json"
grep -q "\"version\":\"${TLS_VERSION}\"" "$work/embed/schema-embed.json" \
  || fail "schema-embed.json does not carry version ${TLS_VERSION}"
for prop in caPrivateKeyPemWo caPrivateKeyPemWoVersion; do
  grep -q "\"$prop\"" "$work/embed/schema-embed.json" || fail "schema lacks LocallySignedCert.$prop"
done
done_step

cmd_dir="$here/cmd/pulumi-resource-tls"
cat >"$work/overlay.json" <<JSON
{"Replace": {
  "$cmd_dir/schema-embed.json": "$work/embed/schema-embed.json",
  "$cmd_dir/bridge-metadata.json": "$work/embed/bridge-metadata.json"
}}
JSON
run_step "building pulumi-resource-tls" gobuild -overlay "$work/overlay.json" -o "$out/pulumi-resource-tls" ./cmd/pulumi-resource-tls

got="$("$out/pulumi-resource-tls" -version)" || fail "pulumi-resource-tls -version failed"
[[ "$got" == "$TLS_VERSION" ]] || fail "pulumi-resource-tls -version printed '$got', want $TLS_VERSION"
log "OK: $out/pulumi-resource-tls (version $got, $(du -h "$out/pulumi-resource-tls" | cut -f1)) in ${SECONDS}s"
