# Guest-side set-up shared by the real-kernel benchmarks
# (bench/vm-detach-guest.sh, vm-grouplock-guest.sh, vm-provision-guest.sh),
# sourced in the QEMU guest as /bin/guest-lib.sh: the host scripts pass it
# in NODEDEV_VM_BINS. Runs only in the guest (busybox sh).
#
# Results go to $OUT while measuring and are printed at the end (serial
# console output under TCG would steal time from the next step); failures
# of a timed step go to $ERR. Lines: NODEDEV-BENCH TOOL OP DEVICE NANOSECONDS;
# checks: NODEDEV-TEST PASS|FAIL NAME.
OUT=/tmp/bench.txt
ERR=/tmp/bench-errors.txt
: > $OUT; : > $ERR

# The igb PF of the guest and its VFs (each VF alone in its IOMMU group).
IGB_PF_ID="0x8086 0x10c9"
IGB_VF_ID="0x8086 0x10ca"

pass() { echo "NODEDEV-TEST PASS $1"; }
fail() { echo "NODEDEV-TEST FAIL $1: $2"; }
drv() {
    l=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)
    if [ -n "$l" ]; then basename "$l"; else echo none; fi
}
by_id() {
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ] && basename "$d"
    done
}
igb_pf() { by_id $IGB_PF_ID | head -n1; }
igb_vfs() { by_id $IGB_VF_ID; }

# The stub loaded once up front, so that no timed way pays for loading it;
# then the guest's kernel and CPUs, and what the caller adds.
guest_info() {
    modprobe vfio-pci
    echo "NODEDEV-BENCH-INFO kernel $(uname -r), vCPUs: $(nproc)$*"
}

# bench TOOL OP DEVICES WANT CMD...: time CMD (bench/nstime.c); every one
# of DEVICES must end on driver WANT, else the step goes to $ERR. The
# result is labelled with the device, or NNvf for several. WARM=1: run and
# check, do not record.
bench() {
    tool=$1 op=$2 devs=$3 want=$4; shift 4
    if ns=$(nstime "$@" 2>/tmp/cmd-err); then rc=0; else rc=$?; fi
    wrong=""
    for x in $devs; do [ "$(drv "$x")" = "$want" ] || wrong="$wrong $x:$(drv "$x")"; done
    if [ "$rc" != 0 ] || [ -n "$wrong" ]; then
        echo "$tool $op exit $rc, not on $want:$wrong: $(head -c 300 /tmp/cmd-err | tr '\n' ' ')" >> $ERR
    elif [ "${WARM:-0}" = 0 ]; then
        label=$devs; [ "$(echo $devs | wc -w)" -gt 1 ] && label="$(echo $devs | wc -w)vf"
        echo "NODEDEV-BENCH $tool $op $label $ns" >> $OUT
    fi
}

# Check NAME: nothing of nodedev's state left in /run/nodedev.
no_records_left() {
    left=$(ls /run/nodedev/*.json 2>/dev/null | wc -l)
    [ "$left" = 0 ] && pass "$1" || fail "$1" "$left records left in /run/nodedev"
}
