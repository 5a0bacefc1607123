#!/usr/bin/env bash
# Detach cost on a real kernel: in the disposable QEMU guest of the
# real-kernel suite, time detach (host driver -> vfio-pci) and reattach per
# device for the sysfs floor (bench/sysfs_floor.c), nodedev (CLI and C API)
# and the peers driverctl and dpdk-devbind, then a bulk detach of every igb
# VF, serial against parallel.
#
#   bash bench/vm-detach.sh        (as root; about 4 minutes on 2 cores)
#
# Every driver change happens in the guest (bench/vm-detach-guest.sh); this
# machine's /usr is shared into it READ-ONLY (virtio-9p) for bash, python3
# and lspci. Prints a markdown table and writes target/bench/vm-detach.md.
# The guest has one vCPU, as in the suite: with NODEDEV_VM_SMP=2 a TCG
# guest here once hung for good (RCU stalls, a lost timer on CPU 0), and
# gave the same conclusions, only slower.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench/vm-detach.sh: needs root (QEMU and packages, like capi-tests/vm/run.sh)" >&2
    exit 2
fi
need=()
for pair in driverctl:driverctl dpdk-devbind.py:dpdk lspci:pciutils python3:python3 cc:gcc; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The guest runs the peers from this machine's /usr: they must live there.
for f in /usr/sbin/driverctl /usr/bin/dpdk-devbind.py /usr/bin/python3 /usr/bin/lspci /usr/bin/bash; do
    [ -x "$f" ] || { echo "bench/vm-detach.sh: $f missing (the guest sees only /usr)" >&2; exit 1; }
done

# The shipped build (no crash-hooks) replaces the suite's CLI in the guest.
cargo build --release --quiet
out=target/bench
bins=$out/vm-bin
mkdir -p "$bins"
# CLI and library copied together: target/release may be rebuilt meanwhile.
cp target/release/nodedev target/release/libnodedev.so "$bins/"
ln -sf libnodedev.so "$bins/libnodedev.so.0"
cc -static -O2 -Wall -pthread -o "$bins/sysfs_floor" bench/sysfs_floor.c
cc -static -O2 -Wall -o "$bins/nstime" bench/nstime.c
cc -O2 -Wall -pthread -Iinclude bench/detach_capi.c -L"$bins" -lnodedev \
    -Wl,-rpath,"$PWD/$bins" -o "$bins/detach_capi"

log=$out/vm-detach.log
rc=0
NODEDEV_VM_GUEST_SCRIPT=bench/vm-detach-guest.sh NODEDEV_VM_SHARE_USR=1 NODEDEV_VM_SMP=${NODEDEV_VM_SMP:-1} \
    NODEDEV_VM_BINS="bench/guest-lib.sh $bins/nodedev $bins/sysfs_floor $bins/nstime $bins/detach_capi" \
    NODEDEV_VM_TIMEOUT=${NODEDEV_VM_TIMEOUT:-540} \
    bash capi-tests/vm/run.sh > "$log" || rc=$?
grep -v -e '^NODEDEV-BENCH ' -e '^NODEDEV-TEST PASS' "$log" || true

# Medians per (tool, operation, device): sorted by time within each key,
# the middle value (the mean of the two middle ones for an even count).
rev=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src Cargo.toml || rev="$rev with uncommitted changes in src/"
{
    echo "rev $rev"
    echo "host $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; $(qemu-system-x86_64 --version | head -n1)"
    grep -a '^NODEDEV-BENCH-' "$log" || true
    grep -a '^NODEDEV-BENCH ' "$log" | sort -k2,2 -k3,3 -k4,4 -k5,5n | awk '
        function flush() { if (n) print "MEDIAN", key, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), n }
        { k = $2 " " $3 " " $4; if (k != key) { flush(); key = k; n = 0 } v[++n] = $5 }
        END { flush() }'
} | awk '
    /^rev / { sub(/^rev /, ""); rev = $0 }
    /^host / { sub(/^host /, ""); host = $0 }
    $1 == "NODEDEV-BENCH-INFO" { sub(/^NODEDEV-BENCH-INFO /, ""); guest = $0 }
    $1 == "NODEDEV-BENCH-DEVICE" { devs[++ndev] = $2; label[$2] = $2 " (" $3 ")" }
    $1 == "MEDIAN" { med[$2, $3, $4] = $5 / 1e6; cnt[$2, $3, $4] = $6; if ($4 ~ /^[0-9]+vf$/) bulk = $4 }
    function ms(x) { return x == "" ? "-" : sprintf("%.1f", x) }
    function ratio(x, y) { return (x == "" || y == "") ? "-" : sprintf("%.2f", x / y) }
    function bulk_head(a, b) {
        print "| tool | " a " serial | " a " parallel | parallel / serial | " b " serial | " b " parallel | parallel / serial |"
        print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    }
    # One row: TOOL serial and parallel, the ratio to the serial time of BASE.
    function bulk_row(label, tool, kind, base,    s, p, bs, back, rs, rp, brs) {
        back = kind == "detach" ? "reattach" : "release"
        s = med[tool, "bulk-" kind "-serial", bulk]; p = med[tool, "bulk-" kind "-parallel", bulk]
        bs = med[base, "bulk-" kind "-serial", bulk]
        rs = med[tool, "bulk-" back "-serial", bulk]; rp = med[tool, "bulk-" back "-parallel", bulk]
        brs = med[base, "bulk-" back "-serial", bulk]
        print "| " label " | " ms(s) " | " ms(p) " | " ratio(p, bs) " | " ms(rs) " | " ms(rp) " | " ratio(rp, brs) " |"
    }
    function per_device(title, floor, tools, ntools,    i, t, d, fd, fr) {
        print "\n### " title "\n"
        print "| device | tool | detach ms | x floor | reattach ms | x floor | runs |"
        print "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
        for (i = 1; i <= ndev; i++) {
            d = devs[i]; fd = med[floor, "detach", d]; fr = med[floor, "reattach", d]
            for (t = 1; t <= ntools; t++)
                print "| " label[d] " | " tools[t] " | " ms(med[tools[t], "detach", d]) " | " \
                    ratio(med[tools[t], "detach", d], fd) " | " ms(med[tools[t], "reattach", d]) " | " \
                    ratio(med[tools[t], "reattach", d], fr) " | " cnt[tools[t], "detach", d] " |"
        }
    }
    END {
        print "## Detach cost on a real kernel (QEMU guest, TCG)\n"
        print "`bash bench/vm-detach.sh`, nodedev " rev ". Host: " host ". Guest: " guest ", q35 + emulated VT-d, TCG;"
        print "the peers run from the host'"'"'s /usr, shared read-only over virtio-9p. Timed in the guest"
        print "with CLOCK_MONOTONIC (bench/nstime.c: fork to wait). Medians in ms; x floor = median /"
        print "the floor'"'"'s median on the same device. Detach: host driver -> vfio-pci; reattach: back."
        split("floor nodedev-cli driverctl dpdk-devbind", p)
        per_device("One process per operation", "floor", p, 4)
        print "\n- floor: bench/sysfs_floor.c (static C): driver_override, unbind, drivers_probe, read the driver link"
        print "- nodedev-cli: `nodedev detach DEV --driver vfio`, `nodedev reattach DEV` (release build)"
        print "- driverctl: `driverctl --nosave set-override DEV vfio-pci`, `driverctl --nosave unset-override DEV`"
        print "- dpdk-devbind: `dpdk-devbind.py -b vfio-pci DEV`, `dpdk-devbind.py -b ORIGINAL DEV`"
        split("floor-inproc nodedev-capi", q)
        per_device("In one process: C API loop against the floor loop", "floor-inproc", q, 2)
        print "\n- floor-inproc: `sysfs_floor loop`, the same writes in a loop"
        print "- nodedev-capi: bench/detach_capi.c, one connection, `virNodeDeviceDetachFlags(dev, \"vfio\", 0)`, `virNodeDeviceReAttach(dev)`"
        if (bulk == "") exit
        print "\n### Bulk: " (bulk + 0) " igb VFs (each alone in its group) to vfio-pci and back\n"
        print "Whole batch, ms, median of " cnt["floor", "bulk-detach-serial", bulk] ". Serial: one after the other; parallel: a thread (C) or a process (CLI) per VF.\n"
        bulk_head("detach", "reattach")
        bulk_row("floor", "floor", "detach", "floor")
        bulk_row("nodedev-capi", "nodedev-capi", "detach", "nodedev-capi")
        bulk_row("nodedev-cli", "nodedev-cli", "detach", "nodedev-cli")
        bulk_row("nodedev-cli-chain", "nodedev-cli-chain", "detach", "nodedev-cli-chain")
        print "\n- floor: `sysfs_floor [-j] detach|reattach`; nodedev-capi: `detach_capi [-j] detach|reattach`, a call per VF"
        print "- nodedev-cli: a `nodedev detach VF` process per VF; nodedev-cli-chain: one process, `detach VF1; detach VF2; ...`"
        print "\n### Managed prepare and release: " (bulk + 0) " VFs, detach + reset of each, then reset + reattach\n"
        bulk_head("prepare", "release")
        bulk_row("floor (with the reset file)", "floor", "prepare", "floor")
        bulk_row("nodedev-capi, a call per VF", "nodedev-capi", "prepare", "nodedev-capi")
        bulk_row("nodedev-capi, one Prepare / Release call", "nodedev-capi-one-call", "prepare", "nodedev-capi")
        print "\n- a call per VF: virNodeDeviceDetachFlags + virNodeDeviceReset, virNodeDeviceReset + virNodeDeviceReAttach (`detach_capi [-j] -r`)"
        print "- one call: `virNodeDevicePrepare(conn, owner, vfs, " (bulk + 0) ", \"vfio\", VIR_NODE_DEVICE_PREPARE_MANAGED)` (the library moves and"
        print "  resets the VFs a thread each) and `virNodeDeviceRelease(conn, owner, vfs, " (bulk + 0) ", 0)`; its ratio is to the serial calls per VF"
    }' > "$out/vm-detach.md"
cat "$out/vm-detach.md"
echo "written: $out/vm-detach.md (raw: $log)"
exit $rc
