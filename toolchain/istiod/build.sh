#!/usr/bin/env bash
# Builds a version-stamped Istio pilot-discovery (istiod) from the pinned wrapper module, and copies
# the module's generated CRD bundle next to it.
#   bash build.sh OUT_DIR
# The version comes from go.mod (istio.io/istio, a pseudo-version); see NOTES.md.
# OUT_DIR gets pilot-discovery and crd-all.gen.yaml (upstream manifests/charts/base/files/crd-all.gen.yaml).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh" istiod
out_dir_arg "$@"
go_env
log "wrapper $here, output $out"

run_step "downloading modules" go -C "$here" mod download

# Version stamps, derived from the pinned module version (no hand-typed version here).
mod_info() { go -C "$here" list -m -f "$2" "$1"; }
istio_version="$(mod_info istio.io/istio '{{.Version}}')"   # e.g. v0.0.0-20260827124520-eed52ebb66ad
istio_dir="$(mod_info istio.io/istio '{{.Dir}}')"
[[ "$istio_version" =~ ^v0\.0\.0-[0-9]{14}-([0-9a-f]{12})$ ]] \
  || fail "unexpected istio.io/istio version '$istio_version' (expected a pseudo-version)"
# The proxy gives only the 12-hex commit prefix of the pseudo-version (its .info has no Origin hash).
istio_commit="${BASH_REMATCH[1]}"
[ -f "$istio_dir/VERSION" ] || fail "no VERSION file in $istio_dir"
# Upstream's Makefile.core.mk stamps untagged builds as "$(cat VERSION)-dev", e.g. 1.31-dev.
istio_line="$(tr -d '[:space:]' <"$istio_dir/VERSION")-dev"
pkg=istio.io/istio/pkg/version
ldflags="-s -w"
ldflags+=" -X ${pkg}.buildVersion=${istio_version}"
ldflags+=" -X ${pkg}.buildGitRevision=${istio_commit}"
ldflags+=" -X ${pkg}.buildStatus=Clean"
ldflags+=" -X ${pkg}.buildTag=${istio_line}"
ldflags+=" -X ${pkg}.buildHub=istio-ca.local"
ldflags+=" -X ${pkg}.buildOS=$(go env GOOS)"
ldflags+=" -X ${pkg}.buildArch=$(go env GOARCH)"
log "stamps: buildVersion=${istio_version} buildGitRevision=${istio_commit} buildTag=${istio_line}"

run_step "building pilot-discovery (istio.io/istio/pilot/cmd/pilot-discovery)" go -C "$here" build -trimpath -p 2 \
  -ldflags "$ldflags" -o "$out/pilot-discovery" istio.io/istio/pilot/cmd/pilot-discovery

step "copying the CRD bundle"
crds="$istio_dir/manifests/charts/base/files/crd-all.gen.yaml"
[ -s "$crds" ] || fail "$crds is missing or empty"
# The module cache is read-only; the copy in OUT_DIR need not be.
install -m 0644 "$crds" "$out/crd-all.gen.yaml"
grep -q 'kind: CustomResourceDefinition' "$out/crd-all.gen.yaml" || fail "crd-all.gen.yaml holds no CustomResourceDefinition"
log "crd-all.gen.yaml: $(grep -c '^kind: CustomResourceDefinition' "$out/crd-all.gen.yaml") CRDs"
done_step

step "checking the binary"
got="$("$out/pilot-discovery" version --short)" || fail "pilot-discovery version failed"
[ "$got" = "client version: $istio_version" ] \
  || fail "pilot-discovery version --short says '$got', expected 'client version: $istio_version'"
"$out/pilot-discovery" discovery --help >/dev/null || fail "pilot-discovery discovery --help failed"
log "pilot-discovery version: $got"
ls -l "$out/pilot-discovery" "$out/crd-all.gen.yaml"
done_step
log "OK: $out/pilot-discovery $out/crd-all.gen.yaml"
