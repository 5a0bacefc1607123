# Records and recovery against the real kernel (issue 11, items 3 to 5).
# Sourced by suite.sh near its end: uses its helpers and $U, $E, $B1, $B2.
# Leaves every device on its host driver and /run/nodedev without records.

R=/run/nodedev

# A record is damaged between two runs: the device stays protected (nothing
# moves it), recover reports it every time, and only clearing lifts it.
ok records-corrupt-setup nodedev -c $U detach "$E" --driver vfio
head -c 100 "$R/$E.json" > /tmp/half && cat /tmp/half > "$R/$E.json"
refused records-corrupt-blocks-reattach "recover --clear" nodedev -c $U reattach "$E"
refused records-corrupt-blocks-detach "cannot be used" nodedev -c $U detach "$E" --driver kvm
refused records-corrupt-blocks-reset "protected" nodedev -c $U reset "$E"
refused records-corrupt-blocks-prepare "protected" nodedev -c $U prepare vm1 "$E" --managed
expect_driver records-corrupt-device-kept "$E" vfio-pci
refused records-corrupt-reported "cannot be used" nodedev -c $U recover
refused records-corrupt-reported-again "cannot be used" nodedev -c $U recover
cmp -s /tmp/half "$R/$E.json" && pass records-corrupt-file-kept || fail records-corrupt-file-kept "the file changed"
# Not ours: a symlink, or a file others can read, is refused the same way.
mv "$R/$E.json" /tmp/half.json && ln -s /tmp/half.json "$R/$E.json"
refused records-symlink-refused "symbolic link" nodedev -c $U reattach "$E"
rm "$R/$E.json" && mv /tmp/half.json "$R/$E.json"
ok records-corrupt-cleared nodedev -c $U recover --clear "$E"
ls "$R/$E.json.cleared-"* >/dev/null 2>&1 && pass records-cleared-kept-aside || fail records-cleared-kept-aside "$(ls $R)"
ok records-after-clear-recover-clean nodedev -c $U recover
ok records-after-clear-reattach nodedev -c $U reattach "$E"
expect_driver records-after-clear-driver "$E" e1000e
rm -f "$R/$E.json.cleared-"*

# A full tmpfs as the state directory: taking a device is refused with
# nothing changed; devices detached or prepared before it filled up come back.
# (statedir= is refused for the live /sys: the tmpfs goes over /run/nodedev.)
F=/run/nodedev
fill() { dd if=/dev/zero of=$F/fill$1 bs=4096 2>/dev/null; dd if=/dev/zero of=$F/fill$1b bs=1 2>/dev/null; }
mkdir -p $F && mount -t tmpfs -o size=256k,mode=700 tmpfs $F
FU="$U"
ok records-full-setup-detach nodedev -c "$FU" detach "$E" --driver vfio
ok records-full-setup-prepare nodedev -c "$FU" prepare vm1 "$EDU" --managed
fill 1
echo "NODEDEV-NOTE full tmpfs: $(df -k $F | tail -n1)"
refused records-full-detach-refused "nothing changed" nodedev -c "$FU" detach "$B1" --driver vfio
expect_driver records-full-detach-unchanged "$B1" e1000
refused records-full-group-refused "nothing changed" nodedev -c "$FU" detach "$B1" --driver vfio --group
expect_driver records-full-group-unchanged-first "$B1" e1000
expect_driver records-full-group-unchanged-second "$B2" e1000
refused records-full-prepare-refused "nothing changed" nodedev -c "$FU" prepare vm2 "$B1" "$B2" --managed
expect_driver records-full-prepare-unchanged-first "$B1" e1000
expect_driver records-full-prepare-unchanged-second "$B2" e1000
ok records-full-release nodedev -c "$FU" release vm1
expect_driver records-full-release-driver "$EDU" none
fill 2   # the released record's space, taken again
ok records-full-reattach nodedev -c "$FU" reattach "$E"
expect_driver records-full-reattach-driver "$E" e1000e
n=$(ls $F/*.json 2>/dev/null | wc -l)
[ "$n" = 0 ] && pass records-full-no-records || fail records-full-no-records "$n records: $(ls $F)"
ok records-full-nothing-pending nodedev -c "$FU" recover
umount $F

# Opening a connection recovers nothing; a locked-down connection only
# reports; recover itself can die at any step and be run again.
# (sh has no local variables: these use pk_* names of their own)
pause_kill() { # k command...: run, SIGKILL after the k-th sysfs write; 0 if it got there
    pk_k=$1; shift
    rm -f /tmp/paused
    NODEDEV_PAUSE_AFTER_WRITE=$pk_k NODEDEV_PAUSE_MARKER=/tmp/paused nodedev -c $U "$@" >/dev/null 2>&1 &
    pk_pid=$!
    pk_i=0
    while [ ! -e /tmp/paused ] && kill -0 $pk_pid 2>/dev/null && [ $pk_i -lt 100 ]; do usleep 100000; pk_i=$((pk_i + 1)); done
    kill -9 $pk_pid 2>/dev/null; wait $pk_pid 2>/dev/null
    [ -e /tmp/paused ]
}
# $1 check name, $2 device, $3 host driver: on its stub with a settled record, or back with none.
consistent() {
    pk_rec=$R/$2.json; pk_d=$(drv "$2")
    if [ -e "$pk_rec" ]; then
        case "$pk_d" in vfio-pci|pci-stub) ;; *) fail "$1" "$2 on $pk_d with a record"; return 1;; esac
        grep -q "\"original_driver\": *\"$3\"" "$pk_rec" || { fail "$1" "$2 lost its original driver"; return 1; }
    elif [ "$pk_d" != "$3" ]; then fail "$1" "$2 on $pk_d without a record"; return 1; fi
    pass "$1"
}
pause_kill 2 detach "$E" --driver vfio || fail records-half-done-setup "detach never reached write 2"
[ -e "$R/$E.json" ] && [ "$(drv "$E")" = none ] && pass records-half-done-setup || fail records-half-done-setup "driver $(drv "$E")"
refused records-half-done-blocks "nodedev recover" nodedev -c $U detach "$E" --driver vfio
refused records-lockdown-only-reports "locked down" nodedev -c "$U?lockdown=1" recover
[ "$(drv "$E")" = none ] && pass records-lockdown-changed-nothing || fail records-lockdown-changed-nothing "$E on $(drv "$E")"
k=1
while [ $k -le 6 ]; do
    if ! pause_kill $k recover; then
        echo "NODEDEV-NOTE recover has $((k - 1)) sysfs writes"
        break
    fi
    ok "records-recover-again-after-kill-at-$k" nodedev -c $U recover
    consistent "records-recover-killed-at-$k" "$E" e1000e
    [ -e "$R/$E.json" ] && nodedev -c $U reattach "$E" >/dev/null 2>&1
    pause_kill 2 detach "$E" --driver vfio || fail "records-recover-setup-$k" "detach never reached write 2"
    k=$((k + 1))
done
[ $k -gt 2 ] && pass records-recover-kill-points || fail records-recover-kill-points "recover paused at $((k - 1)) writes only"
ok records-recover-final nodedev -c $U recover
expect_driver records-recover-final-driver "$E" e1000e

# A process with a thread per device (managed prepare of a group) killed
# while its threads work: recover, and each device is consistent.
k=1
while [ $k -le 8 ]; do
    if ! pause_kill $k prepare vm1 "$B1" "$B2" --managed; then
        nodedev -c $U release vm1 >/dev/null 2>&1
        break
    fi
    ok "records-threads-recover-$k" nodedev -c $U recover
    consistent "records-threads-killed-at-$k-first" "$B1" e1000
    consistent "records-threads-killed-at-$k-second" "$B2" e1000
    nodedev -c $U release vm1 >/dev/null 2>&1
    for d in "$B1" "$B2"; do [ -e "$R/$d.json" ] && nodedev -c $U reattach "$d" >/dev/null 2>&1; done
    k=$((k + 1))
done
[ $k -gt 2 ] && pass records-threads-kill-points || fail records-threads-kill-points "only $((k - 1))"
expect_driver records-threads-first-back "$B1" e1000
expect_driver records-threads-second-back "$B2" e1000
left=$(ls $R/*.json 2>/dev/null | wc -l)
[ "$left" = 0 ] && pass records-none-left || fail records-none-left "$(ls $R)"
