# Guest checks for issue 13 (device lifecycle): VFIO variant driver choice
# against this kernel's real modules.alias, and persistent SR-IOV VF counts
# applied when the PF's driver binds. Sourced by suite.sh (its helpers, $U,
# $E, /tmp/uevlog); ends with the devices as they were and no records.

# ---- VFIO variant drivers: the choice libvirt 10 makes ----
# The guest's modules.alias is depmod's for the modules run.sh puts in the
# initramfs: vfio-pci's own catch-all "vfio_pci:v*d*sv*sd*bc*sc*i*" (7
# wildcards) is the only vfio_pci: line, so every device gets plain vfio-pci.
MA=/lib/modules/$(uname -r)/modules.alias
echo "NODEDEV-NOTE vfio_pci: lines of the guest's modules.alias: $(grep '^alias vfio_pci:' "$MA" | tr '\n' ';')"
grep -q '^alias vfio_pci:v\*d\*sv\*sd\*bc\*sc\*i\* vfio_pci$' "$MA" && pass variant-modules-alias-has-vfio-pci-catch-all \
    || fail variant-modules-alias-has-vfio-pci-catch-all "$(grep vfio "$MA" | head -3 | tr '\n' ' ')"
# `show --json`: the candidates with their wildcard counts, the choice, why.
# candidates_of DEV: "module:wildcards" of each candidate, space-separated.
candidates_of() {
    nodedev -c $U show "$1" --json | grep -o '"module":"[^"]*","alias":"[^"]*","wildcards":[0-9]*' \
        | sed 's/"module":"\([^"]*\)".*"wildcards":\([0-9]*\)/\1:\2/' | tr '\n' ' ' | sed 's/ $//'
}
chosen_of() { nodedev -c $U show "$1" --json | grep -o '"module":"[^"]*","explicit"' | sed 's/"module":"\([^"]*\)".*/\1/'; }
c=$(candidates_of "$E"); m=$(chosen_of "$E")
echo "NODEDEV-NOTE e1000e $E: VFIO candidates [$c], chosen $m"
[ "$c" = "vfio_pci:7" ] && [ "$m" = vfio_pci ] && pass variant-e1000e-candidates-plain-vfio-pci \
    || fail variant-e1000e-candidates-plain-vfio-pci "candidates [$c], chosen '$m': $(nodedev -c $U show "$E" --json | head -c 400)"
nodedev -c $U show "$E" --json | grep -q '"reason":"plain vfio-pci: its own entry vfio_pci:v\*d\*sv\*sd\*bc\*sc\*i\* matches with the fewest wildcards (7)"' \
    && pass variant-e1000e-reason || fail variant-e1000e-reason "$(nodedev -c $U show "$E" --json | sed 's/.*"reason"/reason/' | head -c 300)"
# Detach with "vfio": the choice is bound and recorded.
ok variant-detach-default nodedev -c $U detach "$E"
expect_driver variant-detach-default-on-vfio-pci "$E" vfio-pci
[ "$(record_field "$E" stub)" = vfio-pci ] && pass variant-record-names-driver || fail variant-record-names-driver "$(tr -d '\n' < "/run/nodedev/$E.json" | head -c 300)"
ok variant-reattach nodedev -c $U reattach "$E"
# Named explicitly, either spelling.
ok variant-explicit-vfio-pci nodedev -c $U detach "$E" --driver vfio:vfio-pci
expect_driver variant-explicit-vfio-pci-driver "$E" vfio-pci
# Named again while on it: nothing to do.
ok variant-explicit-again nodedev -c $U detach "$E" --driver vfio:vfio_pci
ok variant-explicit-reattach nodedev -c $U reattach "$E"
# Names that are no VFIO driver of this kernel: refused, nothing changes.
refused variant-explicit-host-driver-refused "'vfio:e1000e' names no VFIO driver" nodedev -c $U detach "$E" --driver vfio:e1000e
refused variant-explicit-unknown-refused "VFIO drivers for $E (pci:v00008086d000010D3.*): vfio_pci (7 wildcards" \
    nodedev -c $U detach "$E" --driver vfio:mlx5_vfio_pci
expect_driver variant-refused-untouched "$E" e1000e
# With module loading forbidden, plain vfio-pci (loaded by now) is used as ever.
ok variant-no-modprobe-loaded-driver nodedev -c "$U?modprobe=0" detach "$E"
expect_driver variant-no-modprobe-on-vfio-pci "$E" vfio-pci
ok variant-no-modprobe-reattach nodedev -c $U reattach "$E"

# ---- igb VFs: their candidates, and a persistent VF count ----
PF=$(by_id 0x8086 0x10c9 | head -n1)
if [ -z "$PF" ]; then
    echo "NODEDEV-NOTE no igb PF in this guest: persistent SR-IOV checks skipped"
else
    ok sriov-persistent-define nodedev -c $U sriov "$PF" 2 --driver vfio --persistent
    [ -f "/etc/nodedev/persistent/$PF.vfs.json" ] && pass sriov-persistent-file \
        || fail sriov-persistent-file "$(ls /etc/nodedev/persistent 2>&1 | tr '\n' ' ')"
    VF=$(by_id 0x8086 0x10ca | head -n1)
    c=$(candidates_of "$VF"); m=$(chosen_of "$VF")
    echo "NODEDEV-NOTE igbvf VF $VF: VFIO candidates [$c], chosen $m"
    [ "$c" = "vfio_pci:7" ] && [ "$m" = vfio_pci ] && pass variant-igb-vf-candidates-plain-vfio-pci \
        || fail variant-igb-vf-candidates-plain-vfio-pci "candidates [$c], chosen '$m'"
    # A boot replayed for the PF: it is enumerated before igb is loaded (no
    # driver, no VFs); nodedev-apply.service's `nodedev apply` cannot make VFs
    # yet and says so; igb is loaded as 80-drivers.rules would, and its bind
    # event is what 40-nodedev.rules acts on: this guest has no udevd, so the
    # command the rule runs (`nodedev apply $kernel`) is run by hand, after
    # the bind uevent was seen.
    ok sriov-persistent-vfs-removed nodedev -c $U sriov "$PF" 0
    : > /tmp/uevents
    uevent /tmp/uevlog & uev=$!
    sleep 1
    echo 1 > "/sys/bus/pci/devices/$PF/remove"
    rmmod igb
    echo 1 > /sys/bus/pci/rescan
    sleep 1
    expect_driver sriov-persistent-pf-enumerated-driverless "$PF" none
    # The boot unit's apply: the PF waits for its driver, which is no failure (exit 0).
    if out=$(nodedev -c $U apply 2>&1); then
        echo "$out" | grep -q "^$PF: waiting: .*has no driver yet" && echo "$out" | grep -q " waiting, 0 not applied$" \
            && pass sriov-persistent-apply-waits-for-pf-driver \
            || fail sriov-persistent-apply-waits-for-pf-driver "no waiting line: $(echo "$out" | tr '\n' ' ')"
    else
        fail sriov-persistent-apply-waits-for-pf-driver "exit status $?: $(echo "$out" | tr '\n' ' ')"
    fi
    modprobe igb
    sleep 1
    grep -q "^bind .*$PF igb" /tmp/uevents && pass sriov-persistent-pf-bind-uevent \
        || fail sriov-persistent-pf-bind-uevent "$(tr '\n' ' ' < /tmp/uevents | head -c 300)"
    ok sriov-persistent-rule-command nodedev -c $U apply "$PF"
    sleep 1
    kill $uev 2>/dev/null; wait $uev 2>/dev/null
    VFS=$(by_id 0x8086 0x10ca)
    [ "$(echo $VFS | wc -w)" = 2 ] && pass sriov-persistent-2-vfs || fail sriov-persistent-2-vfs "VFs: $VFS"
    for vf in $VFS; do expect_driver "sriov-persistent-$vf-on-vfio" "$vf" vfio-pci; done
    grep "^bind" /tmp/uevents | grep -q igbvf && fail sriov-persistent-never-bound-igbvf "$(grep igbvf /tmp/uevents | head -2 | tr '\n' ' ')" \
        || pass sriov-persistent-never-bound-igbvf
    ok sriov-persistent-apply-again nodedev -c $U apply
    ok sriov-persistent-undefine nodedev -c $U sriov "$PF" 0 --persistent
    [ ! -e "/etc/nodedev/persistent/$PF.vfs.json" ] && pass sriov-persistent-file-removed || fail sriov-persistent-file-removed "still there"
    [ -z "$(by_id 0x8086 0x10ca)" ] && pass sriov-persistent-vfs-gone || fail sriov-persistent-vfs-gone "$(by_id 0x8086 0x10ca)"
    expect_driver sriov-persistent-pf-back-on-igb "$PF" igb
fi

left=$(ls /run/nodedev/*.json 2>/dev/null | wc -l)
[ "$left" = 0 ] && pass lifecycle-no-records-left || fail lifecycle-no-records-left "$left records left"
