#!/usr/bin/env bash
# Runs every test of the workspace. On a fresh machine it first installs what the interop
# tests need (skopeo and umoci, from Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in skopeo umoci; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (interop tests need them)"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

cargo test --workspace --no-fail-fast
