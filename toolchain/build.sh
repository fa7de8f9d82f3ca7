#!/usr/bin/env bash
# Builds, or reuses from the cache, the pinned offline toolchain the end-to-end tests run:
# the pulumi CLI and its Python and YAML language hosts, the tls and kubernetes provider plugins,
# kube-apiserver and etcd, and Istio's pilot-discovery (istiod) with Istio's CRDs. Each tool
# is built from Go modules by toolchain/<tool>/build.sh and cached outside the clone under a
# key made of its recipe (go.mod, go.sum, scripts, the shared lib.sh) and the Go version, so a warm
# run takes seconds and a changed pin rebuilds only that tool.
#
#   bash toolchain/build.sh        progress on stderr; last stdout line: the toolchain directory
#
# The directory holds bin/ (pulumi, pulumi-language-python, pulumi-language-python-exec,
# pulumi-nodejs-sdkgen, pulumi-language-yaml, kube-apiserver, etcd, pilot-discovery), providers/
# (pulumi-resource-tls, pulumi-resource-kubernetes) and share/istio/crd-all.gen.yaml (the CRD bundle
# of the pinned istio.io/istio module, copied into the cache by toolchain/istiod/build.sh; it is
# never part of the repository).
# ISTIO_CA_TOOLCHAIN_CACHE moves the cache (default ~/.cache/istio-ca/toolchain).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/lib.sh
source "$here/lib.sh" toolchain
cache="${ISTIO_CA_TOOLCHAIN_CACHE:-$HOME/.cache/istio-ca/toolchain}"
mkdir -p "$cache"

# One build at a time per cache (the suite's parallel workers, `make up` in a test's clone, another
# checkout): a second run waits, then finds what the first built. Without the lock both would build
# into the same $dir.partial, each removing the other's. The lock is released when this script exits.
exec 9>"$cache/.lock"
if ! flock --nonblock 9; then
  log "another toolchain build is running on $cache: waiting for it"
  flock 9
fi

command -v go >/dev/null || fail "go is not on PATH; the toolchain is built from Go modules (Go >= 1.26)"
go_version="$(GOTOOLCHAIN=local go env GOVERSION)"

# The recipe key: every file of the tool's directory but its notes, the shared lib.sh (by content
# and relative name, so the key does not depend on where the checkout is) and the Go version.
recipe_key() {
  { echo "$go_version"; (cd "$here" && sha256sum lib.sh)
    git -C "$here/$1" ls-files -z --cached --others --exclude-standard -- . ':!*.md' \
      | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16
}

build_tool() { # tool -> prints its cached directory
  local tool="$1" key dir started
  key="$(cd "$here/$tool" && recipe_key "$tool")"
  dir="$cache/$tool-$key"
  if [ -f "$dir/.complete" ]; then
    log "$tool: cached ($dir)"
  else
    log "$tool: building into $dir (cold builds take minutes; log: $dir.log)"
    rm -rf "$dir" "$dir.partial"
    started=$SECONDS
    if ! bash "$here/$tool/build.sh" "$dir.partial" >"$dir.log" 2>&1; then
      tail -n 30 "$dir.log" >&2
      fail "building $tool failed; full log: $dir.log"
    fi
    mv "$dir.partial" "$dir"
    echo "$((SECONDS - started))" >"$dir/.build-seconds"
    touch "$dir/.complete"
    log "$tool: built in $((SECONDS - started))s"
  fi
  echo "$dir"
}

pulumi_dir="$(build_tool pulumi)"
yaml_dir="$(build_tool yaml)"
tls_dir="$(build_tool tls)"
kubernetes_dir="$(build_tool kubernetes)"
kube_dir="$(build_tool kube)"
istiod_dir="$(build_tool istiod)"

# One directory per combination, so checkouts with other pins never collide (and the lock above keeps
# two runs from assembling the same one at once).
# "hardlinks" names the layout of bin/ below (older combinations have pulumi's files as symlinks).
parts="hardlinks $pulumi_dir $yaml_dir $tls_dir $kubernetes_dir $kube_dir $istiod_dir"
combined="$cache/toolchain-$(echo "$parts" | sha256sum | cut -c1-16)"
if [ ! -d "$combined" ]; then
  rm -rf "$combined.partial"
  mkdir -p "$combined.partial/bin" "$combined.partial/providers" "$combined.partial/share/istio"
  # pulumi looks for its language hosts next to its resolved path (PULUMI_IGNORE_AMBIENT_PLUGINS
  # turns off the $PATH lookup), and the YAML host is built in another directory: so pulumi and the
  # hosts are hard links here, not symlinks (those would resolve into their own tool directories).
  # A symlinked host found on $PATH would also draw "using pulumi-language-... from $PATH" warnings.
  for file in "$pulumi_dir"/{pulumi,pulumi-language-python,pulumi-language-python-exec,pulumi-nodejs-sdkgen} \
    "$yaml_dir"/pulumi-language-yaml; do
    ln "$file" "$combined.partial/bin/" 2>/dev/null || cp "$file" "$combined.partial/bin/"
  done
  ln -s "$kube_dir/kube-apiserver" "$combined.partial/bin/kube-apiserver"
  ln -s "$kube_dir/etcd" "$combined.partial/bin/etcd"
  ln -s "$istiod_dir/pilot-discovery" "$combined.partial/bin/pilot-discovery"
  ln -s "$istiod_dir/crd-all.gen.yaml" "$combined.partial/share/istio/crd-all.gen.yaml"
  ln -s "$tls_dir/pulumi-resource-tls" "$combined.partial/providers/pulumi-resource-tls"
  ln -s "$kubernetes_dir/pulumi-resource-kubernetes" "$combined.partial/providers/pulumi-resource-kubernetes"
  mv "$combined.partial" "$combined"
fi
for file in "$combined"/bin/* "$combined"/providers/*; do
  [ -x "$file" ] || fail "$file is missing or not executable"
done
[ -s "$combined/share/istio/crd-all.gen.yaml" ] || fail "$combined/share/istio/crd-all.gen.yaml is missing or empty"
log "ready: $combined ($(du -sh "$cache" | cut -f1) cached in $cache)"
echo "$combined"
