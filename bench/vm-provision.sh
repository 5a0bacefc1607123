#!/usr/bin/env bash
# SR-IOV provisioning cost on a real kernel: in the QEMU guest of the
# real-kernel suite, every igb VF straight onto vfio-pci (`nodedev sriov PF N
# --driver vfio`) against creating them, where igbvf probes each, and then
# detaching each (one nodedev process), side by side, as a ratio.
#
#   bash bench/vm-provision.sh     (as root, like capi-tests/vm/run.sh)
#
# Every driver change happens in the guest (bench/vm-provision-guest.sh).
# Prints a markdown table and writes target/bench/vm-provision.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=target/bench
bins=$out/vm-bin
mkdir -p "$bins"
cp target/release/nodedev "$bins/"
cc -static -O2 -Wall -o "$bins/nstime" bench/nstime.c
log=$out/vm-provision.log
rc=0
NODEDEV_VM_GUEST_SCRIPT=bench/vm-provision-guest.sh NODEDEV_VM_BINS="bench/guest-lib.sh $bins/nodedev $bins/nstime" \
    bash capi-tests/vm/run.sh --no-install > "$log" || rc=$?
grep -a -v -e '^NODEDEV-BENCH ' -e '^NODEDEV-TEST PASS' "$log" || true
rev=$(git rev-parse --short HEAD)
grep -a '^NODEDEV-BENCH' "$log" | sort -k2,2 -k3,3 -k5,5n | awk -v rev="$rev" '
    $1 == "NODEDEV-BENCH-INFO" { sub(/^NODEDEV-BENCH-INFO /, ""); guest = $0; next }
    { k = $3; v[k, ++n[k]] = $5 / 1e6; vfs = $4 }
    function median(k,    c) { c = n[k]; return c % 2 ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2 }
    END {
        p = median("provision"); c = median("create-then-detach"); k = median("create-on-igbvf")
        print "## SR-IOV provisioning on a real kernel (QEMU guest, TCG)\n"
        print "`bash bench/vm-provision.sh`, nodedev " rev ". Guest: " guest ". Medians of " n["provision"] " rounds, ms, " vfs " each.\n"
        print "| way | ms | ratio to provisioning |"
        print "| --- | ---: | ---: |"
        printf "| `nodedev sriov PF N --driver vfio` (never on igbvf) | %.1f | 1.00 |\n", p
        printf "| `echo N > sriov_numvfs` (igbvf probes each), then `nodedev \"detach VF1; ...\"` | %.1f | %.2f |\n", c, c / p
        printf "| `echo N > sriov_numvfs` alone (igbvf probes each) | %.1f | %.2f |\n", k, k / p
    }' > "$out/vm-provision.md"
cat "$out/vm-provision.md"
exit $rc
