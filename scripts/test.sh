#!/usr/bin/env bash
# Runs every test of the workspace. On a fresh machine it first installs what the interop
# tests need (skopeo and umoci, docker-registry, CNCF distribution 2.8, which the registry
# tests start themselves on 127.0.0.1, and containerd, which the serve test starts on a
# private socket; all from Debian's packages) and tmux (the progress-bar test reads a real
# pseudo-terminal's screen through it).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in skopeo umoci docker-registry tmux containerd; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (interop tests need them)"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

# The appc interop tests need actool, the appc reference tool: Debian ships its source, which
# builds offline with golang-go. Built once into target/tools/ and found there through ACTOOL.
if [ ! -d /usr/share/gocode/src/github.com/appc/spec/actool ] || ! command -v go >/dev/null 2>&1; then
  echo "installing golang-go golang-github-appc-spec-dev (the appc interop tests build actool)"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq golang-go golang-github-appc-spec-dev
fi
tools_dir="${CARGO_TARGET_DIR:-target}/tools"
mkdir -p "$tools_dir"
tools_dir="$(realpath "$tools_dir")"   # absolute: the build below runs from /
if [ ! -x "$tools_dir/actool" ]; then
  (cd / && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$tools_dir/gocache" \
    go build -o "$tools_dir/actool" github.com/appc/spec/actool)
fi
export ACTOOL="$tools_dir/actool"

# The public API's documentation builds without a warning (broken links, undocumented items).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib

cargo test --workspace --no-fail-fast
