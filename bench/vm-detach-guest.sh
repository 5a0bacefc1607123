#!/bin/sh
# Guest side of bench/vm-detach.sh (runs as the guest's /suite.sh): time
# detach (host driver -> vfio-pci) and reattach with the sysfs floor,
# nodedev and its peers, on devices alone in their IOMMU group, then a bulk
# detach of every igb VF, serial against parallel, and the same as managed
# prepare and release (with a reset of each VF).
#
# Results are written to /tmp/bench.txt while measuring and printed at the
# end: serial console output under TCG would steal time from the next step.
# Lines: NODEDEV-BENCH TOOL OP DEVICE NANOSECONDS. Checks (each tool left
# every device on the expected driver): NODEDEV-TEST PASS|FAIL NAME.
ROUNDS=20       # round trips per tool and device (after one warm-up)
SLOW_EVERY=2    # dpdk-devbind (seconds a call under TCG): every 2nd round only
BULK_ROUNDS=10  # bulk detach + reattach of all VFs per variant

# The shared /usr brings bash (driverctl), python3 and lspci (dpdk-devbind).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
. /bin/guest-lib.sh

# One detach + reattach of DEV (host driver ORIG) with each per-process
# tool; dpdk-devbind only when the third argument is 1.
round_trip() {
    d=$1 o=$2 slow=$3
    bench floor detach "$d" vfio-pci sysfs_floor detach vfio-pci "$d"
    bench floor reattach "$d" "$o" sysfs_floor reattach "$o" "$d"
    bench nodedev-cli detach "$d" vfio-pci nodedev detach "$d" --driver vfio
    bench nodedev-cli reattach "$d" "$o" nodedev reattach "$d"
    bench driverctl detach "$d" vfio-pci driverctl --nosave set-override "$d" vfio-pci
    bench driverctl reattach "$d" "$o" driverctl --nosave unset-override "$d"
    [ "$slow" = 1 ] || return 0
    bench dpdk-devbind detach "$d" vfio-pci dpdk-devbind.py -b vfio-pci "$d"
    bench dpdk-devbind reattach "$d" "$o" dpdk-devbind.py -b "$o" "$d"
}

# Peers from the shared /usr; driverctl's #!/bin/bash needs the real bash,
# and it runs /sbin/modprobe (busybox's here).
ln -sf /usr/bin/bash /bin/bash
ln -sf /bin/busybox /sbin/modprobe
for t in nodedev sysfs_floor detach_capi nstime /bin/bash driverctl dpdk-devbind.py python3 lspci; do
    command -v $t >/dev/null && pass "have-$(basename $t)" || fail "have-$(basename $t)" "not in the guest"
done
guest_info   # vfio-pci loaded up front: no tool pays for loading the stub

E=$(by_id 0x8086 0x10d3 | head -n1)        # e1000e, alone in its group
PF=$(igb_pf)                               # igb PF: its VFs each in their own group
VFS=""
if [ -n "$PF" ]; then
    cat "/sys/bus/pci/devices/$PF/sriov_totalvfs" > "/sys/bus/pci/devices/$PF/sriov_numvfs" && sleep 1
    VFS=$(igb_vfs)
fi
VF1=$(echo $VFS | cut -d' ' -f1)
for d in $E $VF1; do echo "NODEDEV-BENCH-DEVICE $d $(drv "$d")"; done

# Per device, one process per operation: tools interleaved round by round,
# so a slow phase of the host hits them all alike.
for d in $E $VF1; do
    echo "NODEDEV-NOTE bench: per device, $d"
    o=$(drv "$d")
    WARM=1; round_trip "$d" "$o" 1; WARM=0
    i=0
    while [ $i -lt $ROUNDS ]; do round_trip "$d" "$o" $((i % SLOW_EVERY == 0)); i=$((i + 1)); done
    # In one process (each loop warms up itself): the floor against the C API.
    sysfs_floor loop $ROUNDS "$o" "$d" >> $OUT 2>/tmp/cmd-err \
        || echo "floor-inproc loop: $(cat /tmp/cmd-err)" >> $ERR
    detach_capi loop $ROUNDS "$d" >> $OUT 2>/tmp/cmd-err \
        || echo "nodedev-capi loop: $(cat /tmp/cmd-err)" >> $ERR
done

# Bulk: every VF to vfio-pci and back, one by one or all at once.
if [ -n "$VFS" ]; then
    echo "NODEDEV-NOTE bench: bulk, $(echo $VFS | wc -w) VFs"
    vo=$(drv "$VF1")
    # nodedev processes one after the other, or all at once (detach's
    # default stub is vfio).
    serial='op=$1; shift; for d; do nodedev $op "$d" || exit 1; done'
    parallel='op=$1; shift; pids=""; for d; do nodedev $op "$d" & pids="$pids $!"; done
              rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc'
    chain() { # one nodedev process: "OP dev1; OP dev2; ..."
        c=""; for d in $VFS; do c="${c:+$c; }$1 $d"; done; echo "$c"
    }
    i=0
    while [ $i -le $BULK_ROUNDS ]; do
        [ $i = 0 ] && WARM=1 || WARM=0   # round 0 warms up
        bench floor bulk-detach-serial "$VFS" vfio-pci sysfs_floor detach vfio-pci $VFS
        bench floor bulk-reattach-serial "$VFS" "$vo" sysfs_floor reattach "$vo" $VFS
        bench floor bulk-detach-parallel "$VFS" vfio-pci sysfs_floor -j detach vfio-pci $VFS
        bench floor bulk-reattach-parallel "$VFS" "$vo" sysfs_floor -j reattach "$vo" $VFS
        bench nodedev-capi bulk-detach-serial "$VFS" vfio-pci detach_capi detach $VFS
        bench nodedev-capi bulk-reattach-serial "$VFS" "$vo" detach_capi reattach $VFS
        bench nodedev-capi bulk-detach-parallel "$VFS" vfio-pci detach_capi -j detach $VFS
        bench nodedev-capi bulk-reattach-parallel "$VFS" "$vo" detach_capi -j reattach $VFS
        bench nodedev-cli bulk-detach-serial "$VFS" vfio-pci sh -c "$serial" - detach $VFS
        bench nodedev-cli bulk-reattach-serial "$VFS" "$vo" sh -c "$serial" - reattach $VFS
        bench nodedev-cli bulk-detach-parallel "$VFS" vfio-pci sh -c "$parallel" - detach $VFS
        bench nodedev-cli bulk-reattach-parallel "$VFS" "$vo" sh -c "$parallel" - reattach $VFS
        bench nodedev-cli-chain bulk-detach-serial "$VFS" vfio-pci nodedev "$(chain detach)"
        bench nodedev-cli-chain bulk-reattach-serial "$VFS" "$vo" nodedev "$(chain reattach)"
        # Managed prepare and release (detach + reset of each, reset + back):
        # a call per VF, serial or threads, against the library's one call.
        bench floor bulk-prepare-serial "$VFS" vfio-pci sysfs_floor -r detach vfio-pci $VFS
        bench floor bulk-release-serial "$VFS" "$vo" sysfs_floor -r reattach "$vo" $VFS
        bench floor bulk-prepare-parallel "$VFS" vfio-pci sysfs_floor -j -r detach vfio-pci $VFS
        bench floor bulk-release-parallel "$VFS" "$vo" sysfs_floor -j -r reattach "$vo" $VFS
        bench nodedev-capi bulk-prepare-serial "$VFS" vfio-pci detach_capi -r detach $VFS
        bench nodedev-capi bulk-release-serial "$VFS" "$vo" detach_capi -r reattach $VFS
        bench nodedev-capi bulk-prepare-parallel "$VFS" vfio-pci detach_capi -j -r detach $VFS
        bench nodedev-capi bulk-release-parallel "$VFS" "$vo" detach_capi -j -r reattach $VFS
        bench nodedev-capi-one-call bulk-prepare-parallel "$VFS" vfio-pci detach_capi prepare $VFS
        bench nodedev-capi-one-call bulk-release-parallel "$VFS" "$vo" detach_capi release $VFS
        i=$((i + 1))
    done
fi

# Every tool left every device where it should be, and no override behind.
for t in floor floor-inproc nodedev-cli nodedev-capi driverctl dpdk-devbind nodedev-cli-chain nodedev-capi-one-call; do
    bad=$(grep "^$t " $ERR | head -n 2 | tr '\n' ' ')
    [ -z "$bad" ] && pass "bench-$t-every-step-landed" || fail "bench-$t-every-step-landed" "$bad"
done
left=""
for d in $E $VFS; do [ "$(cat /sys/bus/pci/devices/$d/driver_override)" = "(null)" ] || left="$left $d"; done
[ -z "$left" ] && pass bench-no-override-left || fail bench-no-override-left "$left"
[ -s $OUT ] && pass bench-results || fail bench-results "nothing measured"
cat $OUT
