#!/bin/sh
# Guest side of bench/vm-grouplock.sh (runs as the guest's /suite.sh): every
# VF of the igb PF (each alone in its IOMMU group) prepared managed for a
# guest (detach to vfio-pci + reset) and released again, three ways: one
# call for all of them, a process per VF all at once, and a process per VF
# one after the other; through the C API (a forked process per VF with a
# connection of its own) and through the CLI.
# Lines: NODEDEV-BENCH TOOL OP NVF NANOSECONDS; checks: NODEDEV-TEST.
ROUNDS=10
. /bin/guest-lib.sh

PF=$(igb_pf)
[ -n "$PF" ] || { fail bench-pf "no igb PF in this guest"; exit 0; }
N=$(cat "/sys/bus/pci/devices/$PF/sriov_totalvfs")
echo "$N" > "/sys/bus/pci/devices/$PF/sriov_numvfs" && sleep 1
VFS=$(igb_vfs)
VO=$(drv "$(echo $VFS | cut -d' ' -f1)")
guest_info ", $(echo $VFS | wc -w) VFs on $VO"

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
    bench capi-one-call prepare "$VFS" vfio-pci detach_capi prepare $VFS
    bench capi-one-call release "$VFS" "$VO" detach_capi release $VFS
    bench capi-process-per-vf-parallel prepare "$VFS" vfio-pci detach_capi -j prepare-each $VFS
    bench capi-process-per-vf-parallel release "$VFS" "$VO" detach_capi -j release-each $VFS
    bench capi-process-per-vf-serial prepare "$VFS" vfio-pci detach_capi prepare-each $VFS
    bench capi-process-per-vf-serial release "$VFS" "$VO" detach_capi release-each $VFS
    bench cli-one-call prepare "$VFS" vfio-pci sh -c "$one" - prepare $VFS
    bench cli-one-call release "$VFS" "$VO" sh -c "$one" - release $VFS
    bench cli-process-per-vf-parallel prepare "$VFS" vfio-pci sh -c "$each_parallel" - prepare $VFS
    bench cli-process-per-vf-parallel release "$VFS" "$VO" sh -c "$each_parallel" - release $VFS
    bench cli-process-per-vf-serial prepare "$VFS" vfio-pci sh -c "$each_serial" - prepare $VFS
    bench cli-process-per-vf-serial release "$VFS" "$VO" sh -c "$each_serial" - release $VFS
    i=$((i + 1))
done

[ -s $ERR ] && fail bench-grouplock-every-step-landed "$(head -n 3 $ERR | tr '\n' ' ')" \
    || pass bench-grouplock-every-step-landed
echo 0 > "/sys/bus/pci/devices/$PF/sriov_numvfs"
no_records_left bench-grouplock-no-records-left
cat $OUT
