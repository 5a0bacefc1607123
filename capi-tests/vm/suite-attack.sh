# Reviewer's attacks on issue 11 (sourced by suite.sh), each a bug found on
# the real kernel and fixed since: the checks show the fix holds. Ends with $E on e1000e, no record,
# and no /etc/nodedev/policy.conf.

# 1. root=DIR whose sys is a link to /sys drives the live kernel, yet the
#    host policy (lockdown yes) is skipped: it counts as a test tree.
mkdir -p /etc/nodedev /tmp/attack-root
ln -sfn /sys /tmp/attack-root/sys
echo "lockdown yes" >/etc/nodedev/policy.conf
refused attack-lockdown-holds "lockdown" nodedev -c $U detach "$E" --driver vfio
AR="$U?root=/tmp/attack-root"
refused attack-lockdown-via-root-sys-link-holds "lockdown" nodedev -c "$AR" detach "$E" --driver vfio
if [ "$(drv "$E")" != e1000e ]; then
    echo "NODEDEV-NOTE attack: $E went to $(drv "$E") through root=/tmp/attack-root despite lockdown yes"
    nodedev -c "$AR" reattach "$E" >/dev/null 2>&1
fi
rm -f /etc/nodedev/policy.conf
rm -rf /tmp/attack-root
expect_driver attack-lockdown-back "$E" e1000e

# 2. statedir= on the live host hides the host's records: a device assigned
#    to vm-a can be prepared for vm-b by a caller that names another statedir.
ok attack-prepare-vm-a nodedev -c $U prepare vm-a "$E" --managed
refused attack-prepare-vm-b-refused "assigned to vm-a" nodedev -c $U prepare vm-b "$E" --managed
refused attack-statedir-refused-on-live-host "statedir=" nodedev -c "$U?statedir=/tmp/attack-state" prepare vm-b "$E" --managed
nodedev -c "$U?statedir=/tmp/attack-state" release vm-b >/dev/null 2>&1
rm -rf /tmp/attack-state
ok attack-release-vm-a nodedev -c $U release vm-a
nodedev -c $U reattach "$E" >/dev/null 2>&1
expect_driver attack-statedir-back "$E" e1000e
[ ! -e "/run/nodedev/$E.json" ] && pass attack-no-record-left || fail attack-no-record-left "$(ls /run/nodedev)"

# 3. Holders the /proc scan does not see (holders.rs:scan): a process that
#    keeps only the device fd (group and container closed; on kernels before
#    6.18 the fd's fdinfo does not name the device), and one whose main
#    thread exited (its /proc/PID/fd is empty; the fds are under
#    /proc/PID/task/TID/fd). Held: either is refused at once naming the pid
#    (it used to wait for the timeout and blame nobody).
UA="$U?timeout=3"
for mode in device-only leader-exits; do
    ok "attack-$mode-detach" nodedev -c $U detach "$E" --driver vfio
    rm -f /tmp/held
    VFIO_HOLD_MODE=$mode vfio_hold "$(group "$E")" "$E" >/tmp/held 2>&1 &
    HOLDER=$!
    i=0
    while ! grep -q ready /tmp/held 2>/dev/null && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
    if grep -q ready /tmp/held; then
        t0=$(awk '{printf "%d", $1 * 100}' /proc/uptime)
        refused "attack-$mode-holder-seen" "in use by pid $HOLDER" nodedev -c "$UA" reattach "$E"
        echo "NODEDEV-NOTE attack: $mode holder: reattach returned after $(( $(awk '{printf "%d", $1 * 100}' /proc/uptime) - t0 ))0 ms"
    else
        fail "attack-$mode-holder-start" "$(tr '\n' ' ' </tmp/held)"
    fi
    kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null; HOLDER=
    sleep 1
    nodedev -c $U recover >/dev/null 2>&1
    [ "$(drv "$E")" != e1000e ] && nodedev -c $U reattach "$E" >/dev/null 2>&1
    expect_driver "attack-$mode-back" "$E" e1000e
    [ ! -e "/run/nodedev/$E.json" ] && pass "attack-$mode-no-record" || fail "attack-$mode-no-record" "$(ls /run/nodedev)"
done
