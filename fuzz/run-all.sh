#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, one after another, one job each,
# from seeds the hostile corpus makes (`HOSTILE_SEED_DIR=DIR cargo test --test hostile_seeds`
# writes DIR/<target>/; this script does that into SCRATCH_DIR/seeds unless SEED_DIR names
# seeds made already). cargo-fuzz needs nightly flags: on a stable toolchain
# RUSTC_BOOTSTRAP=1 allows them. Crashes land in SCRATCH_DIR/<target>/artifacts/.
# Usage: fuzz/run-all.sh [SECONDS] [SCRATCH_DIR] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir=$(pwd)
seconds=${1:-600}
scratch=${2:-/tmp/oci-store-fuzz}
shift 2 || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(digest_and_ref document_walk layout_import oci_archive aci bounded_tar)
declare -A max_len=([digest_and_ref]=512 [document_walk]=65536 [layout_import]=65536
                    [oci_archive]=262144 [aci]=262144 [bounded_tar]=65536)
seeds=${SEED_DIR:-$scratch/seeds}
if [ -z "${SEED_DIR:-}" ]; then
    (cd .. && HOSTILE_SEED_DIR="$seeds" cargo test --test hostile_seeds)
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target/corpus" "$scratch/$target/artifacts"
    cp -n "$seeds/$target"/* "$scratch/$target/corpus/" 2>/dev/null || true
    echo "== $target: $(date -u +%FT%TZ), $(ls "$scratch/$target/corpus" | wc -l) seeds"
    (cd "$scratch/$target" && cargo fuzz run --fuzz-dir "$fuzz_dir" -O "$target" corpus -- \
        -max_total_time="$seconds" -jobs=1 -rss_limit_mb=2048 -max_len="${max_len[$target]}" \
        -artifact_prefix="$scratch/$target/artifacts/" -print_final_stats=1) \
        > "$scratch/$target/run.log" 2>&1 || echo "== $target: exit status $?"
    tail -n 3 "$scratch/$target/fuzz-0.log" 2>/dev/null || true
    ls "$scratch/$target/artifacts"
done
