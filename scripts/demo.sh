#!/usr/bin/env bash
# The main job on the embedded default (blobs as files, metadata in SQLite, no server): builds
# oci-store, makes a small OCI image layout with the project's own layout builder, then drives a
# fresh store through the CLI — import, list, tag, check, export, remove, collect garbage —
# printing each command and what it answered.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin oci-store --example make_layout
target=${CARGO_TARGET_DIR:-$PWD/target}/release
bin=$target/oci-store
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=$work/store
run() { echo "\$ oci-store $*"; "$bin" --store "$store" "$@"; echo; }
step() { echo "# $*"; }

step "an image layout made by examples/make_layout.rs: one linux/amd64 image, two gzip layers"
"$target/examples/make_layout" "$work/layout" latest
echo

step "the original client's commands, verbatim"
run import --sref latest --dref nginx:latest "$work/layout"
run list
run export --sref nginx:latest --dref latest "$work/exported"
step "the export is a v1 layout holding every blob the ref reaches"
(cd "$work/exported" && find . -type f | sort)
echo

step "a second name for the image, and a full check (every blob rehashed)"
run tag nginx:latest demo:v1
run check demo:v1 --verify
step "an oci-archive export, imported back under the name it carries"
run export --sref demo:v1 --archive "$work/demo.tar"
run rm --ref demo:v1
run import "$work/demo.tar"
run list
run stats

step "removing one name frees nothing while the other still reaches the image"
run rm --ref nginx:latest
run gc --dry-run
step "removing the last one lets gc take the image"
run rm --ref demo:v1
run gc --dry-run
run gc
run stats
run fsck
echo "demo finished: store was $store"
