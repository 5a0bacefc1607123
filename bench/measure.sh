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
xml="$PWD/target/bench/list_xml"
# name|command; the first is the reference the ratios are taken against.
tools=(
    "nodedev list|$nd list"
    "nodedev list --json|$nd list --json"
    "C API: list + XML of each|$xml"
    "lspci -D -nn -k|lspci -D -nn -k"
    "driverctl list-devices|driverctl list-devices"
    "dpdk-devbind.py --status|dpdk-devbind.py --status"
)

: > "$dir/tools"
for t in "${tools[@]}"; do
    name=${t%%|*} cmd=${t#*|}
    slug=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
    echo "$slug|$name" >> "$dir/tools"
    echo "N=$n: $name" >&2
    # The first run warms the cache and keeps the output (line counts in
    # the report); a tool that fails stops the benchmark.
    $cmd > "$dir/$slug.out" 2>/dev/null
    hyperfine --style none -N --min-runs 3 --max-runs 15 \
        --export-json "$dir/$slug.json" "$cmd" > /dev/null 2>&1
    # Syscall counts for the programs that read sysfs themselves (driverctl
    # and dpdk-devbind fork a process per device or call lspci).
    case $name in
        driverctl* | dpdk*) ;;
        *) strace -f -c -o "$dir/$slug.strace" $cmd > /dev/null 2>&1 ;;
    esac
done
