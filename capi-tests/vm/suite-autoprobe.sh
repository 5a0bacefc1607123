# SR-IOV autoprobe (sourced by suite.sh): a provisioning SIGKILLed (crash-hooks
# pause, as crash_at in suite.sh) after turning the PF's sriov_drivers_autoprobe
# off leaves it off with the value before saved in /run/nodedev/PF.autoprobe;
# recover sets it back, and so does the next provisioning of that PF. Ends
# with autoprobe 1, no VFs and nothing saved.
AP_PF=$(by_id 0x8086 0x10c9 | head -n1)
if [ -n "$AP_PF" ]; then
    AP=/sys/bus/pci/devices/$AP_PF/sriov_drivers_autoprobe
    AP_SAVED=/run/nodedev/$AP_PF.autoprobe
    kill_provisioning() { # NAME K: SIGKILL `sriov PF 2` after its K-th sysfs write
        rm -f /tmp/paused
        NODEDEV_PAUSE_AFTER_WRITE=$2 NODEDEV_PAUSE_MARKER=/tmp/paused nodedev -c $U sriov "$AP_PF" 2 --driver vfio >/dev/null 2>&1 &
        pid=$!
        i=0
        while [ ! -e /tmp/paused ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
        kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
        [ -e /tmp/paused ] && [ "$(cat "$AP")" = 0 ] && [ "$(cat "$AP_SAVED" 2>/dev/null)" = 1 ] && pass "$1-killed-left-off-and-saved" \
            || fail "$1-killed-left-off-and-saved" "paused $(cat /tmp/paused 2>/dev/null), autoprobe $(cat "$AP"), saved $(cat "$AP_SAVED" 2>/dev/null)"
    }
    set_back() { # NAME
        [ "$(cat "$AP")" = 1 ] && [ ! -e "$AP_SAVED" ] && pass "$1-set-back" \
            || fail "$1-set-back" "autoprobe $(cat "$AP"), $(ls /run/nodedev | tr '\n' ' ')"
    }
    for k in 1 2; do
        kill_provisioning autoprobe-recover-$k $k
        ok autoprobe-recover-$k nodedev -c $U recover
        set_back autoprobe-recover-$k
        ok autoprobe-recover-$k-remove-vfs nodedev -c $U sriov "$AP_PF" 0
    done
    kill_provisioning autoprobe-next 1
    ok autoprobe-next-provisioning nodedev -c $U sriov "$AP_PF" 2 --driver vfio
    set_back autoprobe-next
    ok autoprobe-next-remove-vfs nodedev -c $U sriov "$AP_PF" 0
fi
