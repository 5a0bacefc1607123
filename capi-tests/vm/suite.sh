#!/bin/sh
# Guest-side suite: the nodedev CLI against the real kernel's /sys.
# Every check prints one "NODEDEV-TEST PASS|FAIL name[: reason]" line.
U=nodedev:///system

pass() { echo "NODEDEV-TEST PASS $1"; }
fail() { echo "NODEDEV-TEST FAIL $1: $2"; }
# The real driver link, or "none".
drv() {
    l=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)
    if [ -n "$l" ]; then basename "$l"; else echo none; fi
}
group() { basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"; }
# record_field ADDR FIELD: the field's value in the newest copy of ADDR's
# record (a record file holds two copies, each line of JSON followed by a
# "SEQUENCE CHECKSUM" line; the higher sequence is the newer), "" when none.
record_field() {
    awk -v f="$2" '
        BEGIN { pat = "\"" f "\": *(\"[^\"]*\"|null|true|false)" }
        /^\{/ { v = ""; if (match($0, pat)) { v = substr($0, RSTART, RLENGTH); sub(/^"[^"]*": */, "", v); gsub(/"/, "", v) }
                cand = v; have = 1; next }
        have && /^[0-9a-f]+ [0-9a-f]+$/ { if (best == "" || ($1 "") > (best "")) { best = $1; out = cand }; have = 0; next }
        END { if (best == "" && have) out = cand; print out }' "/run/nodedev/$1.json" 2>/dev/null
}
record_step() { record_field "$1" step; }
by_id() { # vendor device -> addresses
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ] && basename "$d"
    done
}
# expect_driver NAME ADDR DRIVER: the kernel's driver link must be DRIVER.
expect_driver() {
    now=$(drv "$2")
    if [ "$now" = "$3" ]; then pass "$1"; else fail "$1" "$2 is on $now, expected $3"; fi
}
# ok NAME CMD...: the command must succeed.
ok() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tr '\n' ' ')"; fi
}
# refused NAME PATTERN CMD...: the command must fail with PATTERN in its message.
refused() {
    name=$1; pat=$2; shift 2
    if out=$("$@" 2>&1); then fail "$name" "succeeded: $out"
    elif echo "$out" | grep -q "$pat"; then pass "$name"
    else fail "$name" "wrong message: $(echo "$out" | tr '\n' ' ')"; fi
}

E=$(by_id 0x8086 0x10d3 | head -n1)        # e1000e, alone in its group
set -- $(by_id 0x8086 0x100e)              # two e1000 behind a pci-bridge
B1=$1; B2=$2
EDU=$(by_id 0x1234 0x11e8 | head -n1)       # no driver
echo "NODEDEV-NOTE e1000e=$E e1000=$B1,$B2 edu=$EDU"
[ -n "$E" ] && [ -n "$B1" ] && [ -n "$B2" ] && [ -n "$EDU" ] && pass devices-present || fail devices-present "missing devices"
[ "$(group "$B1")" = "$(group "$B2")" ] && pass bridge-group-shared || fail bridge-group-shared "e1000s in different groups"

# list and show every device
ok list nodedev -c $U list
all=ok
for d in $(ls /sys/bus/pci/devices); do
    nodedev -c $U list | grep -q "$d" || all="$d missing from list"
    nodedev -c $U show "$d" | grep -q "<name>pci_$(echo "$d" | tr ':.' '__')</name>" || all="show $d failed"
done
[ "$all" = ok ] && pass list-and-show-every-device || fail list-and-show-every-device "$all"

# stub module not loaded: forbidden to load -> clear error, nothing moved
[ ! -e /sys/bus/pci/drivers/vfio-pci ] && pass vfio-not-loaded-at-start || fail vfio-not-loaded-at-start "already loaded"
refused modprobe-forbidden "modprobe" nodedev -c "$U?modprobe=0" detach "$E" --driver vfio
expect_driver modprobe-forbidden-untouched "$E" e1000e

# vfio round trip; the library loads vfio-pci; the group is viable for real
ok detach-vfio nodedev -c $U detach "$E" --driver vfio
expect_driver detach-vfio-driver "$E" vfio-pci
[ -d /sys/bus/pci/drivers/vfio-pci ] && pass vfio-module-loaded || fail vfio-module-loaded "no vfio-pci driver"
G=$(group "$E")
[ -c "/dev/vfio/$G" ] && pass dev-vfio-group-appears || fail dev-vfio-group-appears "/dev/vfio/$G missing"
ok group-viable-to-kernel vfio_group_status "$G"
ls /run/nodedev/*.json >/dev/null 2>&1 && pass record-written || fail record-written "no record in /run/nodedev"
ok reset-on-stub nodedev -c $U reset "$E"
ok reattach-vfio nodedev -c $U reattach "$E"
expect_driver reattach-vfio-driver "$E" e1000e
refused reset-refused-on-host-driver "e1000e" nodedev -c $U reset "$E"
# idempotent as libvirt: a device on its host driver and never detached is left alone
ok reattach-not-detached-is-a-no-op nodedev -c $U reattach "$E"
expect_driver reattach-not-detached-unchanged "$E" e1000e
# a driver name no module of the device provides loads nothing
refused reattach-named-unknown-module "nothing was loaded" nodedev -c $U reattach "$E" --driver dccp
lsmod | grep -q '^dccp' && fail reattach-named-unknown-not-loaded "dccp was loaded" || pass reattach-named-unknown-not-loaded

# kvm (pci-stub) round trip
ok detach-kvm nodedev -c $U detach "$E" --driver kvm
expect_driver detach-kvm-driver "$E" pci-stub
ok reattach-kvm nodedev -c $U reattach "$E"
expect_driver reattach-kvm-driver "$E" e1000e

# xen outside a Xen dom0: a clean error, device untouched
refused xen-refused "xen" nodedev -c $U detach "$E" --driver xen
expect_driver xen-untouched "$E" e1000e

# reattach to a named driver
ok detach-for-named nodedev -c $U detach "$E"
ok reattach-named nodedev -c $U reattach "$E" --driver e1000e
expect_driver reattach-named-driver "$E" e1000e

# a driverless device goes back to no driver
ok detach-edu nodedev -c $U detach "$EDU" --driver vfio
expect_driver detach-edu-driver "$EDU" vfio-pci
ok reattach-edu nodedev -c $U reattach "$EDU"
expect_driver reattach-edu-none "$EDU" none

# one endpoint of the bridge group on vfio: not viable, for us and the kernel
ok detach-one-of-bridge-group nodedev -c $U detach "$B1" --driver vfio
G2=$(group "$B1")
vfio_group_status "$G2"; rc=$?
[ "$rc" = 1 ] && pass bridge-group-not-viable-to-kernel || fail bridge-group-not-viable-to-kernel "status exit $rc"
ok reattach-bridge-endpoint nodedev -c $U reattach "$B1"
expect_driver reattach-bridge-endpoint-driver "$B1" e1000
expect_driver bridge-twin-untouched "$B2" e1000

# IOMMU group rules: nodedev's view of viability agrees with the kernel's,
# assignment refuses a group still shared with the host, and owners hold.
ok detach-one-for-group-rules nodedev -c $U detach "$B1" --driver vfio
nodedev -c $U group "$B1" | grep -q "viable for vfio: no" && pass group-cli-not-viable || fail group-cli-not-viable "$(nodedev -c $U group "$B1" | tr '\n' ' ')"
refused prepare-refused-group-not-viable "still bound to e1000" nodedev -c $U prepare vm1 "$B1"
ok reattach-after-refusal nodedev -c $U reattach "$B1"
# the twin on pci-stub instead: pci-stub does no DMA of its own, so the
# kernel lets VFIO have the group; nodedev must say what the kernel says
ok detach-one-beside-pci-stub nodedev -c $U detach "$B1" --driver vfio
ok detach-twin-to-pci-stub nodedev -c $U detach "$B2" --driver kvm
vfio_group_status "$G2"; rc=$?
if nodedev -c $U group "$B1" | grep -q "viable for vfio: yes"; then ours=0; else ours=1; fi
[ "$rc" = "$ours" ] && pass pci-stub-member-viability-agrees-with-kernel \
    || fail pci-stub-member-viability-agrees-with-kernel "kernel status exit $rc, nodedev $ours"
ok reattach-beside-pci-stub nodedev -c $U reattach "$B1"
ok reattach-twin-from-pci-stub nodedev -c $U reattach "$B2"
ok group-detach nodedev -c $U detach "$B1" --driver vfio --group
expect_driver group-detach-first "$B1" vfio-pci
expect_driver group-detach-second "$B2" vfio-pci
ok group-detach-viable-to-kernel vfio_group_status "$G2"
nodedev -c $U group "$B1" | grep -q "viable for vfio: yes" && pass group-cli-viable || fail group-cli-viable "$(nodedev -c $U group "$B1" | tr '\n' ' ')"
ok prepare-unmanaged nodedev -c $U prepare vm1 "$B1" "$B2"
refused prepare-other-owner-refused "assigned to vm1" nodedev -c $U prepare vm2 "$B2"
refused reattach-owned-refused "assigned to vm1" nodedev -c $U reattach "$B1"
ok release-unmanaged nodedev -c $U release vm1
expect_driver release-unmanaged-stays-on-stub "$B1" vfio-pci
ok reattach-group-first nodedev -c $U reattach "$B1"
ok reattach-group-second nodedev -c $U reattach "$B2"
expect_driver reattach-group-first-driver "$B1" e1000
expect_driver reattach-group-second-driver "$B2" e1000
ok prepare-managed nodedev -c $U prepare vm1 "$B1" "$B2" --managed
expect_driver prepare-managed-first "$B1" vfio-pci
expect_driver prepare-managed-second "$B2" vfio-pci
ok prepare-managed-viable-to-kernel vfio_group_status "$G2"
ok release-managed nodedev -c $U release vm1
expect_driver release-managed-first "$B1" e1000
expect_driver release-managed-second "$B2" e1000
refused lockdown-refuses-detach "locked down" nodedev -c "$U?lockdown=1" detach "$E" --driver vfio
expect_driver lockdown-untouched "$E" e1000e

# Two processes racing on the same group: the state lock serialises every
# operation, so the only errors are refusals of a state the other process
# just changed ("not detached", "already"), never a kernel step that failed
# half way; afterwards each device agrees with its record.
race() {
    i=0
    while [ $i -lt 12 ]; do
        nodedev -c $U detach "$B1" --driver vfio --group
        nodedev -c $U reattach "$B1"
        nodedev -c $U detach "$B2" --driver kvm
        nodedev -c $U reattach "$B2"
        i=$((i + 1))
    done
}
race > /tmp/race1.txt 2>&1 & r1=$!
race > /tmp/race2.txt 2>&1 & r2=$!
wait $r1 $r2
bad=$(cat /tmp/race1.txt /tmp/race2.txt | grep 'error:' | grep -v -e 'not detached' -e 'already detached' -e 'reattach it first' || true)
[ -z "$bad" ] && pass race-only-state-refusals || fail race-only-state-refusals "$(echo "$bad" | head -3 | tr '\n' ' ')"
echo "NODEDEV-NOTE race: $(cat /tmp/race1.txt /tmp/race2.txt | grep -c 'detached to') detaches, $(cat /tmp/race1.txt /tmp/race2.txt | grep -c 'error:') refusals"
agree=ok
for d in "$B1" "$B2"; do
    rec=/run/nodedev/$d.json; now=$(drv "$d")
    if [ -e "$rec" ]; then
        [ "$(record_step "$d")" = detached ] && [ "$(record_field "$d" stub)" = "$now" ] || agree="$d on $now, record $(tr -d '\n ' < "$rec")"
        [ "$(record_field "$d" original_driver)" = e1000 ] || agree="$d lost its original driver"
    elif [ "$now" != e1000 ]; then agree="$d on $now without a record"; fi
done
[ "$agree" = ok ] && pass race-records-agree || fail race-records-agree "$agree"
for d in "$B1" "$B2"; do [ -e "/run/nodedev/$d.json" ] && nodedev -c $U reattach "$d" >/dev/null 2>&1; done
expect_driver race-first-back "$B1" e1000
expect_driver race-second-back "$B2" e1000

. /suite-busy.sh
. /suite-fidelity.sh
. /suite-grouplock.sh
. /suite-events.sh
. /suite-events-net.sh
. /suite-autoprobe.sh

left=$(ls /run/nodedev/*.json 2>/dev/null | wc -l)
[ "$left" = 0 ] && pass no-records-left || fail no-records-left "$left records left"

# SR-IOV: the guest's igb PF makes VFs; all of them detach, reset and come back.
PF=$(by_id 0x8086 0x10c9 | head -n1)
if [ -z "$PF" ]; then
    echo "NODEDEV-NOTE no igb PF in this guest: SR-IOV checks skipped"
else
    echo 2 > "/sys/bus/pci/devices/$PF/sriov_numvfs" && sleep 1
    VFS=$(by_id 0x8086 0x10ca)
    [ "$(echo $VFS | wc -w)" = 2 ] && pass sriov-vfs-created || fail sriov-vfs-created "VFs: $VFS"
    nodedev -c $U show "$PF" | grep -q "virt_functions" && pass sriov-pf-xml || fail sriov-pf-xml "no virt_functions"
    for vf in $VFS; do
        before=$(drv "$vf")
        ok "detach-vf-$vf" nodedev -c $U detach "$vf" --driver vfio
        expect_driver "detach-vf-$vf-driver" "$vf" vfio-pci
        ok "reset-vf-$vf" nodedev -c $U reset "$vf"
        ok "reattach-vf-$vf" nodedev -c $U reattach "$vf"
        expect_driver "reattach-vf-$vf-driver" "$vf" "$before"
    done
    echo 0 > "/sys/bus/pci/devices/$PF/sriov_numvfs"

    # Provisioning: VFs straight onto vfio-pci. busybox's uevent listens to
    # the kernel's uevents (netlink) and logs each, so a bind of igbvf to
    # any VF would be seen.
    printf '#!/bin/sh\necho "$ACTION $DEVPATH $DRIVER" >> /tmp/uevents\n' > /tmp/uevlog && chmod +x /tmp/uevlog
    : > /tmp/uevents
    uevent /tmp/uevlog & uev=$!
    sleep 1
    echo 2 > "/sys/bus/pci/devices/$PF/sriov_numvfs" && sleep 1
    echo 0 > "/sys/bus/pci/devices/$PF/sriov_numvfs" && sleep 1
    grep -q "^bind .* igbvf" /tmp/uevents && pass uevent-log-sees-igbvf-binds \
        || fail uevent-log-sees-igbvf-binds "no igbvf bind logged: $(head -c 300 /tmp/uevents | tr '\n' ' ')"
    : > /tmp/uevents
    ok sriov-provision-4-to-vfio nodedev -c $U sriov "$PF" 4 --driver vfio
    sleep 1
    VFS=$(by_id 0x8086 0x10ca)
    [ "$(echo $VFS | wc -w)" = 4 ] && pass sriov-provision-4-vfs || fail sriov-provision-4-vfs "VFs: $VFS"
    for vf in $VFS; do expect_driver "sriov-provisioned-$vf-on-vfio" "$vf" vfio-pci; done
    grep "^bind" /tmp/uevents | grep -q igbvf && fail sriov-provisioned-never-bound-igbvf "$(grep igbvf /tmp/uevents | head -2 | tr '\n' ' ')" \
        || pass sriov-provisioned-never-bound-igbvf
    [ "$(grep -c '^bind .* vfio-pci' /tmp/uevents)" -ge 4 ] && pass sriov-provisioned-bind-uevents-vfio \
        || fail sriov-provisioned-bind-uevents-vfio "$(tr '\n' ' ' < /tmp/uevents | head -c 400)"
    [ "$(cat /sys/bus/pci/devices/$PF/sriov_drivers_autoprobe)" = 1 ] && pass sriov-autoprobe-restored \
        || fail sriov-autoprobe-restored "autoprobe $(cat /sys/bus/pci/devices/$PF/sriov_drivers_autoprobe)"
    ok sriov-provision-idempotent nodedev -c $U sriov "$PF" 4 --driver vfio
    # A VF held through VFIO (vfio_hold, from suite-busy.sh): never removed, even forced.
    VF1=$(echo $VFS | cut -d' ' -f2)
    if start_holder "$(group "$VF1")" "$VF1"; then
        refused sriov-remove-held-refused "$VF1 is in use by pid $HOLDER (vfio_hold)" nodedev -c $U sriov "$PF" 0 --force
        [ "$(by_id 0x8086 0x10ca | wc -l)" = 4 ] && pass sriov-held-nothing-removed || fail sriov-held-nothing-removed "VFs: $(by_id 0x8086 0x10ca)"
        stop_holder
    fi
    ok sriov-remove nodedev -c $U sriov "$PF" 0
    [ -z "$(by_id 0x8086 0x10ca)" ] && pass sriov-removed || fail sriov-removed "VFs left: $(by_id 0x8086 0x10ca)"
    left=$(ls /run/nodedev/*.json 2>/dev/null | wc -l)
    [ "$left" = 0 ] && pass sriov-no-stale-records || fail sriov-no-stale-records "$left records"
    kill $uev 2>/dev/null; wait $uev 2>/dev/null
fi

# Persistent assignment: a definition, then a boot replayed for the device:
# its host driver's module is not loaded yet when it is enumerated (as at
# boot, before udev loads modules), its "add" event is handled as
# 40-nodedev.rules handles it (this guest has no udevd: the rule's program,
# its ATTR{driver_override}, its kmod load and its probe are run by hand, in
# that order), then e1000e is loaded as 80-drivers.rules would; the uevent log
# shows e1000e never bound it.
ok persistent-detach nodedev -c $U detach "$E" --persistent
[ -f "/etc/nodedev/persistent/$E.json" ] && pass persistent-definition-written || fail persistent-definition-written "no file"
ok persistent-reattach-keeps-definition nodedev -c $U reattach "$E"
expect_driver persistent-reattached "$E" e1000e
: > /tmp/uevents
uevent /tmp/uevlog & uev=$!
sleep 1
echo 1 > "/sys/bus/pci/devices/$E/remove"
rmmod e1000e
echo 1 > /sys/bus/pci/rescan
env=$(nodedev -c $U udev "$E")
ov=$(echo "$env" | sed -n 's/^NODEDEV_DRIVER_OVERRIDE=//p')
mod=$(echo "$env" | sed -n 's/^NODEDEV_MODULE=//p')
[ "$ov" = vfio-pci ] && [ -n "$mod" ] && pass persistent-udev-answer || fail persistent-udev-answer "$env"
echo "$ov" > "/sys/bus/pci/devices/$E/driver_override"
modprobe "$mod"
echo "$E" > /sys/bus/pci/drivers_probe
modprobe e1000e
sleep 1
kill $uev 2>/dev/null; wait $uev 2>/dev/null
expect_driver persistent-on-vfio-after-add "$E" vfio-pci
grep "^bind" /tmp/uevents | grep "$E" | grep -q e1000e && fail persistent-never-bound-host "$(grep "$E" /tmp/uevents | tr '\n' ' ')" \
    || pass persistent-never-bound-host
grep "^bind" /tmp/uevents | grep "$E" | grep -q vfio-pci && pass persistent-bind-uevent-vfio \
    || fail persistent-bind-uevent-vfio "$(tr '\n' ' ' < /tmp/uevents | head -c 300)"
ok persistent-apply nodedev -c $U apply
[ "$(record_field "$E" original_driver)" = e1000e ] && pass persistent-apply-record-knows-original \
    || fail persistent-apply-record-knows-original "$(cat "/run/nodedev/$E.json" 2>&1 | tr -d '\n')"
ok persistent-reattach-removes nodedev -c $U reattach "$E" --persistent
expect_driver persistent-back-on-host "$E" e1000e
[ ! -e "/etc/nodedev/persistent/$E.json" ] && pass persistent-definition-removed || fail persistent-definition-removed "still there"

# Differential check: the guest's layout as a simulated host, the same
# operation sequence on both, the driver of every device after every step.
nodedev -c $U dump-host > /tmp/host.json && pass dump-host || fail dump-host "cannot describe the host"
SEQ="detach $E --driver vfio; drivers; detach $B1 --driver kvm; drivers; detach $EDU; drivers; reattach $E; drivers; detach $B2 --driver vfio; drivers; reattach $B1; drivers; reattach $EDU; drivers; reattach $B2 --driver e1000; drivers"
nodedev -c $U "$SEQ" > /tmp/real.txt 2>&1; r1=$?
nodedev -c test:///tmp/host.json "$SEQ" > /tmp/sim.txt 2>&1; r2=$?
if [ "$r1" = 0 ] && [ "$r2" = 0 ] && diff /tmp/real.txt /tmp/sim.txt > /tmp/diff.txt; then
    pass "differential-$(grep -c ' ' /tmp/real.txt)-lines-identical"
else
    fail differential "exit real=$r1 sim=$r2: $(head -c 600 /tmp/diff.txt | tr '\n' ' ')"
fi

# Crash safety: the CLI (built with the test-only crash-hooks feature) stops
# after its k-th sysfs write; we SIGKILL it there, recover, and the device
# must be on its stub with a complete record, or on e1000e with none.
crash_at() { # k command...
    k=$1; shift
    rm -f /tmp/paused
    NODEDEV_PAUSE_AFTER_WRITE=$k NODEDEV_PAUSE_MARKER=/tmp/paused nodedev -c $U "$@" >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ ! -e /tmp/paused ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    name="crash-after-write-$k-of-$1"
    [ -e /tmp/paused ] || { fail "$name" "never reached write $k"; return; }
    if ! out=$(nodedev -c $U recover 2>&1); then fail "$name" "recover failed: $out"; return; fi
    rec=/run/nodedev/$E.json
    d=$(drv "$E")
    if [ -e "$rec" ]; then
        if [ "$d" = vfio-pci ] && [ "$(record_field "$E" original_driver)" = e1000e ] && [ "$(record_step "$E")" = detached ]; then
            pass "$name-on-stub"
        else
            fail "$name" "driver $d, record: $(tr -d '\n' < "$rec")"
        fi
        nodedev -c $U reattach "$E" >/dev/null 2>&1
    elif [ "$d" = e1000e ]; then
        pass "$name-rolled-back"
    else
        fail "$name" "driver $d and no record"
    fi
    expect_driver "$name-reusable" "$E" e1000e
}
for k in 1 2 3; do crash_at $k detach "$E" --driver vfio; done
for k in 1 2 3; do
    nodedev -c $U detach "$E" --driver vfio >/dev/null 2>&1
    crash_at $k reattach "$E"
done

. /suite-tree.sh
. /suite-attack.sh
. /suite-records.sh
. /suite-rustapi.sh
. /suite-hostuse.sh
. /suite-names.sh
. /suite-attack13.sh
. /suite-lifecycle.sh
