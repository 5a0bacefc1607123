#!/bin/sh
# Guest side of bench/vm-provision.sh (runs as the guest's /suite.sh): every
# VF of the igb PF straight onto vfio-pci with `nodedev sriov` against
# creating them (igbvf probes each) and then detaching each, in one nodedev
# process; and creating them alone, for the cost of the igbvf probes.
# Lines: NODEDEV-BENCH TOOL OP DEVICE NANOSECONDS; checks: NODEDEV-TEST.
ROUNDS=10
. /bin/guest-lib.sh
all_on() { # DRIVER: every VF is on it
    for v in $(igb_vfs); do [ "$(drv "$v")" = "$1" ] || return 1; done
    [ -n "$(igb_vfs)" ]
}

PF=$(igb_pf)
[ -n "$PF" ] || { fail bench-pf "no igb PF in this guest"; exit 0; }
N=$(cat "/sys/bus/pci/devices/$PF/sriov_totalvfs")
NUMVFS=/sys/bus/pci/devices/$PF/sriov_numvfs
guest_info ", $N VFs"   # vfio-pci loaded up front: neither way pays for it
# The VFs' addresses, and a one-process chain detaching each.
echo "$N" > $NUMVFS && sleep 1
VFS=$(igb_vfs)
chain=""; for v in $VFS; do chain="${chain:+$chain; }detach $v"; done
echo 0 > $NUMVFS

bad=""
i=0
while [ $i -le $ROUNDS ]; do
    # Straight onto the stub.
    ns=$(nstime nodedev sriov "$PF" "$N" --driver vfio 2>/tmp/err) && all_on vfio-pci \
        || bad="$bad provision:$(head -c 200 /tmp/err)"
    [ $i -gt 0 ] && echo "NODEDEV-BENCH nodedev provision ${N}vf $ns" >> $OUT
    nodedev sriov "$PF" 0 >/dev/null 2>&1 || bad="$bad remove"
    # Created (igbvf takes each), then detached one by one.
    ns=$(nstime sh -c "echo $N > $NUMVFS && nodedev '$chain' >/dev/null" 2>/tmp/err) && all_on vfio-pci \
        || bad="$bad create-then-detach:$(head -c 200 /tmp/err)"
    [ $i -gt 0 ] && echo "NODEDEV-BENCH nodedev create-then-detach ${N}vf $ns" >> $OUT
    nodedev sriov "$PF" 0 --force >/dev/null 2>&1 || bad="$bad remove-forced"
    # Created alone: what the igbvf probes cost.
    ns=$(nstime sh -c "echo $N > $NUMVFS" 2>/tmp/err) && all_on igbvf || bad="$bad create:$(head -c 200 /tmp/err)"
    [ $i -gt 0 ] && echo "NODEDEV-BENCH kernel create-on-igbvf ${N}vf $ns" >> $OUT
    echo 0 > $NUMVFS
    i=$((i + 1))
done
[ -z "$bad" ] && pass bench-provision-every-round-landed || fail bench-provision-every-round-landed "$bad"
no_records_left bench-provision-no-records-left
cat $OUT
