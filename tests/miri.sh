#!/usr/bin/env bash
# Miri over the C boundary's unit tests (the `capi::` tests of the library:
# raw handles, Ref/Free, malloc'ed strings and arrays, the error slots), as
# `make check-miri` and CI run it: undefined behaviour, leaks and double
# frees in the unsafe code at the edge fail the run.
#
# Miri needs a nightly toolchain (the machine image has one beside stable;
# installed here if not) and its `miri` and `rust-src` components, added
# here when missing (a no-op when present). Tests Miri cannot run (foreign calls it does not
# model, reads of freed memory by design) are marked
# `#[cfg_attr(miri, ignore = "why")]` where they stand.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup +nightly --version >/dev/null 2>&1; then
    echo "miri: no nightly toolchain here; installing one (Miri needs nightly)" >&2
    rustup toolchain install nightly --profile minimal || {
        echo "miri: no nightly toolchain could be installed: Miri cannot run" >&2
        exit 1
    }
fi
rustup +nightly component add miri rust-src >/dev/null
cargo +nightly miri setup
# Own target dir: a Miri build does not replace the release artefacts.
exec cargo +nightly miri test --target-dir target/miri --lib -- capi::
