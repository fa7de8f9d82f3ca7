# shellcheck shell=bash
# Helpers shared by toolchain/build.sh and every toolchain/<tool>/build.sh. Source it with the tag
# its messages carry, after `set -euo pipefail`:
#
#   here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
#   source "$here/../lib.sh" kube
#
# Messages go to stderr as "[kube] ..."; stdout stays free for results (toolchain/build.sh prints
# the toolchain directory there). toolchain/build.sh hashes this file into every tool's recipe key,
# so changing it rebuilds every tool.

lib_tag="${1:?usage: source lib.sh TAG}"

# log MESSAGE...: one progress line.
log() { echo "[$lib_tag] $*" >&2; }

# fail MESSAGE...: an error line, then exit 1.
fail() {
  echo "[$lib_tag] ERROR: $*" >&2
  exit 1
}

# step WHAT / done_step: a timed step; done_step logs how long it took since the last step.
lib_step_what=""
lib_step_started=$SECONDS
step() {
  lib_step_what="$*"
  lib_step_started=$SECONDS
  log "$*..."
}
done_step() { log "$lib_step_what: done in $((SECONDS - lib_step_started))s"; }

# run_step WHAT COMMAND...: a timed step of one command; fails the build when the command fails.
run_step() {
  local what="$1"
  shift
  step "$what"
  "$@" || fail "$what failed (exit $?)"
  done_step
}

# out_dir_arg "$@": the OUT_DIR argument of a tool's build.sh; creates it and sets $out to its
# absolute path.
out_dir_arg() {
  if [ $# -ne 1 ] || [ -z "$1" ]; then
    log "usage: bash build.sh OUT_DIR"
    exit 2
  fi
  mkdir -p "$1" || fail "cannot create OUT_DIR $1"
  # shellcheck disable=SC2034 # read by the sourcing script
  out="$(cd "$1" && pwd)"
}

# go_env: checks for go and sets the environment every tool builds with: the local Go only (no
# toolchain download), static binaries, no VCS stamping (the recipe, not the checkout, is the
# version).
go_env() {
  command -v go >/dev/null || fail "go is not on PATH (Go >= 1.26 is needed)"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  log "$(go version)"
}
