# SR-IOV autoprobe (sourced by suite.sh): what a provisioning killed between
# turning the PF's sriov_drivers_autoprobe off and putting it back leaves
# (autoprobe 0, the value before in /run/nodedev/PF.autoprobe) is set back by
# recover, and by the next provisioning of that PF. Ends with autoprobe 1,
# no VFs and no saved value.
AP_PF=$(by_id 0x8086 0x10c9 | head -n1)
if [ -n "$AP_PF" ]; then
    AP=/sys/bus/pci/devices/$AP_PF/sriov_drivers_autoprobe
    AP_SAVED=/run/nodedev/$AP_PF.autoprobe
    leave_killed() {
        echo 0 > "$AP"
        mkdir -p -m 700 /run/nodedev
        (umask 077; echo 1 > "$AP_SAVED")
    }
    leave_killed
    ok autoprobe-recover nodedev -c $U recover
    [ "$(cat "$AP")" = 1 ] && [ ! -e "$AP_SAVED" ] && pass autoprobe-recover-set-back \
        || fail autoprobe-recover-set-back "autoprobe $(cat "$AP"), $(ls /run/nodedev | tr '\n' ' ')"
    leave_killed
    ok autoprobe-next-provisioning nodedev -c $U sriov "$AP_PF" 2 --driver vfio
    [ "$(cat "$AP")" = 1 ] && [ ! -e "$AP_SAVED" ] && pass autoprobe-provisioning-set-back \
        || fail autoprobe-provisioning-set-back "autoprobe $(cat "$AP"), $(ls /run/nodedev | tr '\n' ' ')"
    ok autoprobe-remove-vfs nodedev -c $U sriov "$AP_PF" 0
fi
