#!/usr/bin/env bash
# Enumeration benchmark: nodedev against the tools admins use (lspci,
# driverctl, dpdk-devbind) and against the libraries a daemon would use
# (libudev as libvirt's node-device driver, libpci), all reading the same
# generated sysfs tree.
#
#   bash bench/run.sh [N ...]        (default: 100 1000 10000; as root)
#   NODEDEV_BENCH_QUICK=1 leaves out driverctl and dpdk-devbind (minutes each).
#
# For each N, nodedev-gen-sysfs writes a tree of N PCI functions (cached in
# target/bench/tree-N). Each tool then runs in a private mount namespace
# where that tree is bind-mounted READ-ONLY over /sys: nothing here can reach
# this machine's real /sys (bench/measure.sh refuses to run if the mount is
# not what it expects). bench/alternate.py times every tool in the same run,
# one run of each in turn, round after round; strace -c counts syscalls.
# Results: target/bench/results.md (BENCHMARKS.md quotes it).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${*:-100 1000 10000}

if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh: needs root (a private mount namespace with a tree over /sys)" >&2
    exit 2
fi
need=()
for pair in lspci:pciutils driverctl:driverctl dpdk-devbind.py:dpdk strace:strace cc:gcc; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
# The enumeration peers (bench/list_udev.c, bench/list_pci.c) and the names
# database every tool reads.
for p in libudev-dev libpci-dev libpciaccess-dev pci.ids; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release --quiet
out=target/bench
mkdir -p "$out"
for prog in list_xml lookup_one; do
    cc -O2 -Wall -Iinclude "bench/$prog.c" -Ltarget/release -lnodedev \
        -Wl,-rpath,"$PWD/target/release" -o "$out/$prog"
done
cc -O2 -Wall bench/list_udev.c -o "$out/list_udev" -ludev -lpciaccess
cc -O2 -Wall bench/list_pci.c -o "$out/list_pci" -lpci
cc -O2 -Wall -shared -fPIC bench/sysfs_magic.c -o "$out/sysfs_magic.so" -ldl

for n in $sizes; do
    tree=$out/tree-$n
    # The tree is a function of the generator: rebuild it when that changes.
    stamp=$(sha256sum target/release/nodedev-gen-sysfs | cut -c1-16)
    if [ "$(cat "$tree/stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$tree"
        echo "generating $n functions in $tree ..."
        target/release/nodedev-gen-sysfs "$n" "$tree" >/dev/null
        echo "$stamp" > "$tree/stamp"
    fi
    bash bench/measure.sh "$n" "$tree" "$out/n$n"
done

python3 bench/report.py "$out" $sizes > "$out/results.md"
cat "$out/results.md"
