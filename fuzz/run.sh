#!/usr/bin/env bash
# Bounded coverage-guided run of every fuzz target with cargo fuzz (libFuzzer
# and AddressSanitizer), as `make check-fuzz` and CI do:
#
#   bash fuzz/run.sh [RUNS_PER_TARGET]      (default 10000)
#
# Only a stable toolchain exists here, so RUSTC_BOOTSTRAP=1 lets cargo fuzz
# pass its -Z flags. The committed corpus (fuzz/corpus/TARGET) seeds each
# run and is never modified: new inputs go to target/fuzz-work.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
targets=$(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^nodedev-fuzz$')
cargo fuzz build --release >/dev/null
total=0
for t in $targets; do
    work=target/fuzz-work/$t
    rm -rf "$work" && mkdir -p "$work"
    out=$(cargo fuzz run --release "$t" "$work" "fuzz/corpus/$t" -- -runs="$runs" -max_len=4096 2>&1) || {
        echo "$out" | tail -40
        echo "fuzz: target $t FAILED (crash input saved under fuzz/artifacts/$t)"
        exit 1
    }
    n=$(echo "$out" | sed -n 's/^Done \([0-9]*\) runs.*/\1/p' | tail -n1)
    echo "fuzz $t: ${n:-?} executions, no crash"
    total=$((total + ${n:-0}))
done
echo "fuzz: $total executions in all"
