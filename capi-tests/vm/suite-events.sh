# Node-device events on the real kernel (issue 12, item 5): the kernel's
# uevents reach `nodedev watch` and a libvirt client's callbacks
# (libvirt_events.c, through virEventRunDefaultImpl) within a bound, for
# VFs made and removed with a shell echo to the igb PF's sriov_numvfs and
# an unbind/bind done with echo. Ends as it started: no VFs, $B2 on e1000.
EV_PF=$(by_id 0x8086 0x10c9 | head -n1)
if [ -z "$EV_PF" ]; then
    echo "NODEDEV-NOTE no igb PF in this guest: event checks skipped"
else
    # nodedev watch --json: 3 CREATED (among the VFs' binds), then 3 DELETED, within 3 s.
    nodedev -c $U watch --json --timeout 4 > /tmp/ev-add.json 2>&1 &
    w=$!
    sleep 1
    echo 3 > "/sys/bus/pci/devices/$EV_PF/sriov_numvfs"
    wait $w
    # The VFs' own CREATED (their interfaces under igbvf are suite-events-net.sh's).
    n=$(grep '"event":"created"' /tmp/ev-add.json | grep -c '"subsystem":"pci"')
    [ "$n" = 3 ] && pass events-watch-vfs-created || fail events-watch-vfs-created "$n created: $(head -c 600 /tmp/ev-add.json)"
    nodedev -c $U watch --json --timeout 3 > /tmp/ev-del.json 2>&1 &
    w=$!
    sleep 1
    echo 0 > "/sys/bus/pci/devices/$EV_PF/sriov_numvfs"
    wait $w
    n=$(grep '"event":"deleted"' /tmp/ev-del.json | grep -c '"subsystem":"pci"')
    [ "$n" = 3 ] && pass events-watch-vfs-deleted || fail events-watch-vfs-deleted "$n deleted: $(head -c 600 /tmp/ev-del.json)"

    # A shell unbind: one UPDATE naming the device and the action (after
    # its interface's DELETED).
    nodedev -c $U watch --count 2 --timeout 5 > /tmp/ev-unbind.txt 2>&1 &
    w=$!
    sleep 1
    echo "$B2" > /sys/bus/pci/drivers/e1000/unbind
    wait $w
    echo "$B2" > /sys/bus/pci/drivers/e1000/bind
    name=$(echo "$B2" | sed 's/[:.]/_/g')
    grep -q "^updated pci_$name $B2 unbind" /tmp/ev-unbind.txt && pass events-watch-unbind-update \
        || fail events-watch-unbind-update "$(cat /tmp/ev-unbind.txt)"
    expect_driver events-nic-back "$B2" e1000

    # Idle: a watch with nothing happening is never woken.
    nodedev -c $U watch --timeout 4 > /dev/null 2>&1 &
    w=$!
    sleep 1
    c1=$(awk '/^voluntary_ctxt_switches/ {print $2}' /proc/$w/status)
    sleep 2
    c2=$(awk '/^voluntary_ctxt_switches/ {print $2}' /proc/$w/status)
    wait $w
    echo "NODEDEV-NOTE events-watch-idle: $((c2 - c1)) voluntary context switches in 2 s"
    [ -n "$c1" ] && [ "$((c2 - c1))" -le 1 ] && pass events-watch-idle-no-wakeups \
        || fail events-watch-idle-no-wakeups "$c1 -> $c2 voluntary context switches in 2 s"

    # A libvirt client on the default event loop.
    if [ -x /bin/libvirt_events ]; then
        libvirt_events "$EV_PF" "$B2" e1000
        expect_driver events-c-nic-back "$B2" e1000
        [ "$(cat "/sys/bus/pci/devices/$EV_PF/sriov_numvfs")" = 0 ] && pass events-c-no-vfs-left \
            || fail events-c-no-vfs-left "sriov_numvfs is $(cat "/sys/bus/pci/devices/$EV_PF/sriov_numvfs")"
    else
        fail events-c "libvirt_events not built"
    fi
fi
