#!/usr/bin/env bash
# For bench/run.sh, in a private mount namespace: put the generated tree
# over /sys read-only, check that it is the tree, then time and strace
# every tool.
#
#   measure.sh N TREE OUTDIR
set -euo pipefail
n=$1 tree=$(realpath "$2") dir=$3
mkdir -p "$dir"

# Only ever in a private mount namespace of its own: elsewhere the bind
# mount below would shadow this machine's /sys for everyone. Enter one, then
# check that it differs from the caller's.
if [ -z "${NODEDEV_BENCH_NS:-}" ]; then
    NODEDEV_BENCH_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
ours=$(readlink /proc/self/ns/mnt) caller=$(readlink "/proc/$PPID/ns/mnt")
if [ -z "$ours" ] || [ -z "$caller" ] || [ "$ours" = "$caller" ]; then
    echo "measure.sh: not in a mount namespace of its own ($ours, caller $caller); refusing" >&2
    exit 1
fi
# Never let a mount leak out of this namespace, then shadow /sys.
mount --make-rprivate /
mount --bind "$tree/sys" /sys
mount -o remount,bind,ro /sys
if [ "$(ls /sys/bus/pci/devices | wc -l)" != "$n" ] || touch /sys/.nodedev-bench-probe 2>/dev/null; then
    echo "measure.sh: /sys is not the read-only tree of $n functions; refusing to run" >&2
    exit 1
fi

nd="$PWD/target/release/nodedev"
b="$PWD/target/bench"
# libudev refuses a device directory that is not on sysfs: the shim makes
# the tree's filesystem read as sysfs (bench/sysfs_magic.c).
udev="env LD_PRELOAD=$b/sysfs_magic.so $b/list_udev"
# name|command; the first is the reference the ratios are taken against.
tools=(
    "nodedev list|$nd list"
    "nodedev list --json|$nd list --json"
    "C API: list + XML of each|$b/list_xml"
    "libudev: same fields|$udev"
    "libpci: same fields|$b/list_pci"
    "lspci -D -nn -k|lspci -D -nn -k"
)
# driverctl and dpdk-devbind take minutes at 10,000 functions.
if [ -z "${NODEDEV_BENCH_QUICK:-}" ]; then
    tools+=("driverctl list-devices|driverctl list-devices" "dpdk-devbind.py --status|dpdk-devbind.py --status")
fi

# The three list + XML programs must report the same fields (names
# included) before their times mean anything.
$b/list_xml -p > "$dir/xml.nodedev"
$udev -p > "$dir/xml.udev"
$b/list_pci -p > "$dir/xml.pci"
python3 bench/compare_xml.py "$dir/xml.nodedev" "$dir/xml.udev" "$dir/xml.pci" > "$dir/compare.txt" \
    || { cat "$dir/compare.txt" >&2; echo "measure.sh: the peers' XML differs from nodedev's" >&2; exit 1; }
rm -f "$dir"/xml.*

# One device by name against the raw reads its XML needs (in-process,
# alternating batches): an endpoint and an SR-IOV PF with its VFs.
pf=$(basename "$(dirname "$(find /sys/devices -name sriov_totalvfs -print -quit)")")
# The endpoint: an NVMe drive, or a conventional NIC where the mix has none (N=100).
endpoint=$( (grep -l "DRIVER=nvme" /sys/bus/pci/devices/*/uevent || grep -l "DRIVER=e1000" /sys/bus/pci/devices/*/uevent) \
    | awk -F/ 'NR == 1 { print $(NF - 1) }')
: > "$dir/lookup.txt"
for dev in $endpoint $pf; do
    echo "N=$n: lookup $dev" >&2
    $b/lookup_one "$dev" >> "$dir/lookup.txt"
done

: > "$dir/tools"
timed=()
for t in "${tools[@]}"; do
    name=${t%%|*} cmd=${t#*|}
    slug=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
    echo "$slug|$name" >> "$dir/tools"
    echo "N=$n: $name (output, syscalls)" >&2
    # The first run warms the cache and keeps the output (line counts in
    # the report); a tool that fails stops the benchmark.
    $cmd > "$dir/$slug.out" 2>/dev/null
    # Syscall counts for the programs that read sysfs themselves (driverctl
    # and dpdk-devbind fork a process per device or call lspci).
    case $name in
        driverctl* | dpdk*) ;;
        *) strace -f -c -o "$dir/$slug.strace" $cmd > /dev/null 2>&1 ;;
    esac
    timed+=("$slug=$cmd")
done
# Times: one run of every tool in turn, round after round, so that the
# ratios compare runs that saw the same load (bench/alternate.py).
echo "N=$n: timing, alternating runs" >&2
uptime > "$dir/load-before"
python3 bench/alternate.py "$dir" "${timed[@]}"
uptime > "$dir/load-after"
