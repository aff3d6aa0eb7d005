#!/usr/bin/env bash
# The main job on the embedded default (blobs as files, metadata in SQLite, no server): builds
# oci-store, then drives a fresh store end to end through the CLI, printing each step.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin oci-store
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/oci-store
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=$work/store
run() { echo "\$ oci-store $*"; "$bin" --store "$store" "$@"; echo; }

head -c 3000000 /dev/urandom > "$work/layer.bin"
echo '{"architecture":"amd64","os":"linux"}' > "$work/config.json"

run blob put "$work/layer.bin" --media-type application/vnd.oci.image.layer.v1.tar
layer=$("$bin" --store "$store" blob put "$work/layer.bin")
config=$("$bin" --store "$store" blob put "$work/config.json" --media-type application/vnd.oci.image.config.v1+json)
run blob ls
run blob resolve "${layer:0:13}"
run blob info "${config:7:12}"
run data set demo/app "hello" --type ref --blob "$config"
run data ls --type ref
run extra set "$layer" last-used "$(date +%s)"
run stats
run blob rm "$config"
run data ls --type ref
run gc
run fsck
echo "demo finished: store was $store"
