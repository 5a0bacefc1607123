# Busy devices (sourced by suite.sh): a process holding the e1000e through
# VFIO (vfio_hold: container, group, device fd, as QEMU does). Reattach,
# reset and release are refused in bounded time naming its pid and command,
# nothing changes, and they succeed once it exits. A holder nodedev cannot
# see (its /proc hidden) makes the kernel's unbind wait: the call returns
# with the timeout, and recover finishes after the holder exits.
# Ends with $E on e1000e and no record.

now_cs() { awk '{printf "%d", $1 * 100}' /proc/uptime; }
HOLDER=
start_holder() { # GROUP [ADDR]
    rm -f /tmp/held
    vfio_hold "$@" >/tmp/held 2>&1 &
    HOLDER=$!
    i=0
    while ! grep -q ready /tmp/held 2>/dev/null && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
    grep -q ready /tmp/held || { fail busy-holder-start "$(tr '\n' ' ' </tmp/held)"; return 1; }
}
stop_holder() { [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null; HOLDER=; }
# quick NAME PATTERN CMD...: refused with PATTERN, in less than 3 s.
quick_refusal() {
    name=$1; t0=$(now_cs)
    refused "$@"
    dt=$(( $(now_cs) - t0 ))
    [ $dt -lt 300 ] && pass "$name-bounded" || fail "$name-bounded" "took ${dt}0 ms"
}

BG=$(group "$E")
# VFIO_SET_IOMMU needs the type1 backend, which the kernel's own
# request_module cannot load here (no /sbin/modprobe in the initramfs).
modprobe vfio_iommu_type1 || echo "NODEDEV-NOTE busy: cannot load vfio_iommu_type1"
UT="$U?timeout=3"

# A device fd held: every change that would unbind or reset is refused.
ok busy-detach nodedev -c $U detach "$E" --driver vfio
if start_holder "$BG" "$E"; then
    who="$E is in use by pid $HOLDER (vfio_hold): stop it first"
    quick_refusal busy-reattach-refused "$who" nodedev -c "$UT" reattach "$E"
    quick_refusal busy-reset-refused "$who" nodedev -c "$UT" reset "$E"
    # Its group is only itself, on vfio-pci already: a group detach changes
    # nothing, so it succeeds without touching the held device (idempotent).
    ok busy-detach-group-already-there nodedev -c "$UT" detach "$E" --group
    quick_refusal busy-detach-other-stub-refused "in use by pid $HOLDER (vfio_hold)" nodedev -c "$UT" detach "$E" --driver kvm
    expect_driver busy-unchanged "$E" vfio-pci
    [ "$(record_step "$E")" = detached ] && pass busy-record-intact || fail busy-record-intact "step $(record_step "$E")"
    # Does the kernel let a reset through under a device fd? (informational)
    t0=$(now_cs); echo 1 >"/sys/bus/pci/devices/$E/reset" 2>/dev/null; rc=$?
    echo "NODEDEV-NOTE busy: raw reset under a device fd returned $rc after $(( $(now_cs) - t0 ))0 ms"
    stop_holder
fi
ok busy-reset-after-holder nodedev -c $U reset "$E"
ok busy-reattach-after-holder nodedev -c $U reattach "$E"
expect_driver busy-reattach-after-holder-driver "$E" e1000e

# Release of a managed device its guest still holds.
ok busy-prepare nodedev -c $U prepare vm-busy "$E" --managed
if start_holder "$BG" "$E"; then
    quick_refusal busy-release-refused "$E is in use by pid $HOLDER (vfio_hold)" nodedev -c "$UT" release vm-busy
    expect_driver busy-release-unchanged "$E" vfio-pci
    grep -q '"owner": *"vm-busy"' "/run/nodedev/$E.json" && pass busy-release-owner-kept || fail busy-release-owner-kept "record lost its owner"
    stop_holder
fi
ok busy-release-after-holder nodedev -c $U release vm-busy
expect_driver busy-release-after-holder-driver "$E" e1000e

# Only the group held (container set, no device fd): refused all the same.
# Whether the kernel's unbind would wait for it is measured and noted.
ok busy-detach-2 nodedev -c $U detach "$E" --driver vfio
if start_holder "$BG"; then
    quick_refusal busy-group-only-refused "$E is in use by pid $HOLDER (vfio_hold)" nodedev -c "$UT" reattach "$E"
    echo "$E" >/sys/bus/pci/drivers/vfio-pci/unbind &
    w=$!
    sleep 2
    if kill -0 $w 2>/dev/null; then
        echo "NODEDEV-NOTE busy: kernel $(uname -r): an fd on the group alone makes the unbind wait"
    else
        echo "NODEDEV-NOTE busy: kernel $(uname -r): an fd on the group alone does not make the unbind wait"
    fi
    stop_holder
    wait $w 2>/dev/null
fi
ok busy-reattach-after-group-holder nodedev -c $U reattach "$E"
expect_driver busy-reattach-after-group-holder-driver "$E" e1000e

# A holder nodedev cannot see: nodedev runs with an empty /proc of its own
# (a mount namespace), as for a holder it may not inspect. The unbind waits
# in the kernel; the call returns after timeout=2 with the timeout error.
ok busy-detach-3 nodedev -c $U detach "$E" --driver vfio
if start_holder "$BG" "$E"; then
    t0=$(now_cs)
    unshare -m sh -c "mount -t tmpfs none /proc && exec nodedev -c '$U?timeout=2' reattach $E" >/tmp/busy-out 2>&1
    rc=$?
    dt=$(( $(now_cs) - t0 ))
    if [ $rc = 1 ] && grep -q "did not finish within 2.0 s" /tmp/busy-out; then pass busy-hidden-timeout
    else fail busy-hidden-timeout "exit $rc: $(tr '\n' ' ' </tmp/busy-out)"; fi
    [ $dt -lt 500 ] && pass busy-hidden-timeout-bounded || fail busy-hidden-timeout-bounded "took ${dt}0 ms"
    echo "NODEDEV-NOTE busy: hidden holder: the CLI returned after ${dt}0 ms; while the unbind waits, the driver link shows $(drv "$E")"
    [ "$(record_step "$E")" = reattaching ] && pass busy-hidden-record-kept || fail busy-hidden-record-kept "step $(record_step "$E")"
    # The holder is visible to a normal run: recover refuses to touch it.
    out=$(nodedev -c "$UT" recover 2>&1)
    echo "NODEDEV-NOTE busy: recover while held: $(echo "$out" | tr '\n' ' ' | cut -c1-300)"
    echo "$out" | grep -q "in use by pid $HOLDER" && pass busy-recover-refused || fail busy-recover-refused "$(echo "$out" | tr '\n' ' ')"
    stop_holder
    sleep 1
fi
ok busy-recover-after-holder nodedev -c $U recover
# Only when the holder could not start (already reported): put $E back.
[ "$(record_step "$E")" = detached ] && nodedev -c $U reattach "$E" >/dev/null 2>&1
expect_driver busy-recover-after-holder-driver "$E" e1000e
[ -e "/run/nodedev/$E.json" ] && fail busy-no-record "record left: $(tr -d '\n' <"/run/nodedev/$E.json")" || pass busy-no-record
