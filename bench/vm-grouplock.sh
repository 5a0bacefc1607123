#!/usr/bin/env bash
# Many guests at once on a real kernel: in the QEMU guest of the real-kernel
# suite, every igb VF (each alone in its IOMMU group) prepared managed
# (detach to vfio-pci + reset) and released, by one call for all of them,
# by a process per VF all at once, and by a process per VF one after the
# other (the serial sum). With locks per IOMMU group the processes run at
# once; the target is within 1.3x of the single call.
#
#   bash bench/vm-grouplock.sh     (as root, like capi-tests/vm/run.sh)
#
# Every driver change happens in the guest (bench/vm-grouplock-guest.sh).
# Prints a markdown table and writes target/bench/vm-grouplock.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The shipped build (no crash-hooks) replaces the suite's CLI in the guest.
cargo build --release --quiet
out=target/bench
bins=$out/vm-bin-grouplock
mkdir -p "$bins"
cp target/release/nodedev target/release/libnodedev.so "$bins/"
ln -sf libnodedev.so "$bins/libnodedev.so.0"
cc -static -O2 -Wall -o "$bins/nstime" bench/nstime.c
cc -O2 -Wall -pthread -Iinclude bench/detach_capi.c -L"$bins" -lnodedev \
    -Wl,-rpath,"$PWD/$bins" -o "$bins/detach_capi"
log=$out/vm-grouplock.log
rc=0
NODEDEV_VM_GUEST_SCRIPT=bench/vm-grouplock-guest.sh NODEDEV_VM_SMP=${NODEDEV_VM_SMP:-1} \
    NODEDEV_VM_BINS="bench/guest-lib.sh $bins/nodedev $bins/nstime $bins/detach_capi" \
    NODEDEV_VM_TIMEOUT=${NODEDEV_VM_TIMEOUT:-600} \
    bash capi-tests/vm/run.sh --no-install > "$log" || rc=$?
grep -a -v -e '^NODEDEV-BENCH ' -e '^NODEDEV-TEST PASS' "$log" || true
rev=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src Cargo.toml || rev="$rev with uncommitted changes in src/"
host="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; $(qemu-system-x86_64 --version | head -n1)"
grep -a '^NODEDEV-BENCH' "$log" | sort -k2,2 -k3,3 -k5,5n | awk -v rev="$rev" -v host="$host" '
    $1 == "NODEDEV-BENCH-INFO" { sub(/^NODEDEV-BENCH-INFO /, ""); guest = $0; next }
    { k = $2 " " $3; v[k, ++n[k]] = $5 / 1e6; vfs = $4 + 0 }
    function median(k,    c) { c = n[k]; return c ? (c % 2 ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2) : "" }
    function ms(x) { return x == "" ? "-" : sprintf("%.1f", x) }
    function ratio(x, y) { return (x == "" || y == "") ? "-" : sprintf("%.2f", x / y) }
    function row(label, api, op,    one, par, ser) {
        one = median(api "-one-call " op); par = median(api "-process-per-vf-parallel " op)
        ser = median(api "-process-per-vf-serial " op)
        print "| " label " | " op " | " ms(one) " | " ms(par) " | " ms(ser) " | " ratio(par, one) " | " ratio(ser, one) " |"
    }
    END {
        print "## Many guests at once (QEMU guest, TCG)\n"
        print "`bash bench/vm-grouplock.sh`, nodedev " rev ". Host: " host ". Guest: " guest ", q35 + emulated VT-d, TCG."
        print "All " vfs " VFs of the igb PF, each alone in its IOMMU group, prepared managed (detach to vfio-pci + reset) and"
        print "released; medians of " n["capi-one-call prepare"] " rounds, ms, timed in the guest with CLOCK_MONOTONIC (bench/nstime.c).\n"
        print "| way | op | one call | a process per VF, at once | a process per VF, one after the other | at once / one call | one after the other / one call |"
        print "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
        row("C API", "capi", "prepare"); row("C API", "capi", "release")
        row("CLI", "cli", "prepare"); row("CLI", "cli", "release")
        print "\n- C API, one call: `virNodeDevicePrepare(conn, \"bench\", vfs, " vfs ", \"vfio\", MANAGED)`, `virNodeDeviceRelease(conn, \"bench\", vfs, " vfs ", 0)` (`detach_capi prepare|release`)"
        print "- C API, a process per VF: a forked process per VF, each with a connection of its own, preparing its VF for its own guest (`detach_capi [-j] prepare-each|release-each`)"
        print "- CLI, one call: `nodedev prepare bench VF1 ... VF" vfs " --managed`, `nodedev release bench`; a process per VF: `nodedev prepare benchI VFI --managed`, `nodedev release benchI`"
    }' > "$out/vm-grouplock.md"
cat "$out/vm-grouplock.md"
exit $rc
