#!/bin/sh
# Guest side of bench/vm-grouplock.sh (runs as the guest's /suite.sh): every
# VF of the igb PF (each alone in its IOMMU group) prepared managed for a
# guest (detach to vfio-pci + reset) and released again, three ways: one
# call for all of them, a process per VF all at once, and a process per VF
# one after the other; through the C API (a forked process per VF with a
# connection of its own) and through the CLI.
# Lines: NODEDEV-BENCH TOOL OP NVF NANOSECONDS; checks: NODEDEV-TEST.
ROUNDS=10
OUT=/tmp/bench.txt
ERR=/tmp/bench-errors.txt
: > $OUT; : > $ERR

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

PF=$(by_id 0x8086 0x10c9 | head -n1)
[ -n "$PF" ] || { fail bench-pf "no igb PF in this guest"; exit 0; }
N=$(cat "/sys/bus/pci/devices/$PF/sriov_totalvfs")
modprobe vfio-pci   # loaded up front: no way pays for it
echo "$N" > "/sys/bus/pci/devices/$PF/sriov_numvfs" && sleep 1
VFS=$(by_id 0x8086 0x10ca)
VO=$(drv "$(echo $VFS | cut -d' ' -f1)")
echo "NODEDEV-BENCH-INFO kernel $(uname -r), vCPUs: $(nproc), $(echo $VFS | wc -w) VFs on $VO"

# bench TOOL OP WANT CMD...: time CMD; every VF must end on WANT. WARM=1: not recorded.
bench() {
    tool=$1 op=$2 want=$3; shift 3
    if ns=$(nstime "$@" 2>/tmp/cmd-err); then rc=0; else rc=$?; fi
    wrong=""
    for x in $VFS; do [ "$(drv "$x")" = "$want" ] || wrong="$wrong $x:$(drv "$x")"; done
    if [ "$rc" != 0 ] || [ -n "$wrong" ]; then
        echo "$tool $op exit $rc, not on $want:$wrong: $(head -c 300 /tmp/cmd-err | tr '\n' ' ')" >> $ERR
    elif [ "${WARM:-0}" = 0 ]; then
        echo "NODEDEV-BENCH $tool $op $(echo $VFS | wc -w)vf $ns" >> $OUT
    fi
}

# The CLI three ways (each in one sh, so all pay the same shell start).
one='op=$1; shift; if [ $op = prepare ]; then nodedev prepare bench "$@" --managed; else nodedev release bench; fi'
each_parallel='op=$1; shift; i=0; pids=""
    for d; do
        if [ $op = prepare ]; then nodedev prepare bench$i "$d" --managed & else nodedev release bench$i & fi
        pids="$pids $!"; i=$((i + 1))
    done
    rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc'
each_serial='op=$1; shift; i=0
    for d; do
        if [ $op = prepare ]; then nodedev prepare bench$i "$d" --managed || exit 1; else nodedev release bench$i || exit 1; fi
        i=$((i + 1))
    done'

i=0
while [ $i -le $ROUNDS ]; do
    [ $i = 0 ] && WARM=1 || WARM=0   # round 0 warms up
    bench capi-one-call prepare vfio-pci detach_capi prepare $VFS
    bench capi-one-call release "$VO" detach_capi release $VFS
    bench capi-process-per-vf-parallel prepare vfio-pci detach_capi -j prepare-each $VFS
    bench capi-process-per-vf-parallel release "$VO" detach_capi -j release-each $VFS
    bench capi-process-per-vf-serial prepare vfio-pci detach_capi prepare-each $VFS
    bench capi-process-per-vf-serial release "$VO" detach_capi release-each $VFS
    bench cli-one-call prepare vfio-pci sh -c "$one" - prepare $VFS
    bench cli-one-call release "$VO" sh -c "$one" - release $VFS
    bench cli-process-per-vf-parallel prepare vfio-pci sh -c "$each_parallel" - prepare $VFS
    bench cli-process-per-vf-parallel release "$VO" sh -c "$each_parallel" - release $VFS
    bench cli-process-per-vf-serial prepare vfio-pci sh -c "$each_serial" - prepare $VFS
    bench cli-process-per-vf-serial release "$VO" sh -c "$each_serial" - release $VFS
    i=$((i + 1))
done

[ -s $ERR ] && fail bench-grouplock-every-step-landed "$(head -n 3 $ERR | tr '\n' ' ')" \
    || pass bench-grouplock-every-step-landed
echo 0 > "/sys/bus/pci/devices/$PF/sriov_numvfs"
left=$(ls /run/nodedev/*.json 2>/dev/null | wc -l)
[ "$left" = 0 ] && pass bench-grouplock-no-records-left || fail bench-grouplock-no-records-left "$left"
cat $OUT
