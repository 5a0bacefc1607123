# Network interfaces' events on the real kernel (issue 12 item 5, events2):
# the e1000 NIC $B2's interface is DELETED when a shell unbinds the NIC
# (unregister_netdev, before the function's unbind) and CREATED when it is
# bound again; `ip link set dev X name Y` is the old name DELETED, then the
# new one CREATED (libvirt's handling of a `move` uevent); a VF that igbvf
# takes gets its interface CREATED, and DELETED with the VF. Ends as it
# started: $B2 on e1000 under its own name, no VFs.
EN_IF=$(ls "/sys/bus/pci/devices/$B2/net" 2>/dev/null | head -n1)
# jfield NAME: the string value of NAME in each JSON line of stdin.
jfield() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
# events FILE: "event device subsystem" per watch --json line.
events() {
    while read -r line; do
        echo "$(echo "$line" | jfield event) $(echo "$line" | jfield device) $(echo "$line" | jfield subsystem)"
    done < "$1" | tr '\n' ';'
}
# has FILE EVENT SUBSYSTEM PARENT: a line of FILE with those three.
has() {
    grep "\"event\":\"$2\"" "$1" | grep "\"subsystem\":\"$3\"" | grep -q "\"parent\":\"$4\""
}
if [ -z "$EN_IF" ]; then
    fail events-net-nic-interface "$B2 on $(basename "$(readlink "/sys/bus/pci/devices/$B2/driver")") has no interface"
else
    en_mac=$(cat "/sys/class/net/$EN_IF/address" | tr ':' '_')
    en_pci=$(echo "$B2" | sed 's/[:.]/_/g')
    en_net="net_$(echo "$EN_IF" | sed 's/[^A-Za-z0-9]/_/g')_$en_mac"

    nodedev -c $U watch --json --count 4 --timeout 5 > /tmp/evn-unbind.json 2>&1 &
    w=$!
    sleep 1
    echo "$B2" > /sys/bus/pci/drivers/e1000/unbind
    echo "$B2" > /sys/bus/pci/drivers/e1000/bind
    wait $w
    # The interface goes before the function's unbind and comes back before its bind.
    order=$(events /tmp/evn-unbind.json)
    want="deleted $en_net net;updated pci_$en_pci pci;created $en_net net;updated pci_$en_pci pci;"
    [ "$order" = "$want" ] && pass events-net-unbind-deleted-bind-created \
        || fail events-net-unbind-deleted-bind-created "got '$order' want '$want': $(head -c 900 /tmp/evn-unbind.json)"
    grep -q "\"parent\":\"pci_$en_pci\"" /tmp/evn-unbind.json && pass events-net-parent-is-the-function \
        || fail events-net-parent-is-the-function "$(head -c 600 /tmp/evn-unbind.json)"
    expect_driver events-net-nic-back "$B2" e1000

    # A rename (the interface must be down).
    EN_IF=$(ls "/sys/bus/pci/devices/$B2/net" | head -n1)
    ip link set dev "$EN_IF" down
    nodedev -c $U watch --count 2 --timeout 4 > /tmp/evn-rename.txt 2>&1 &
    w=$!
    sleep 1
    if ip link set dev "$EN_IF" name evn0; then
        wait $w
        got=$(awk '{print $1, $2, $4}' /tmp/evn-rename.txt | tr '\n' ';')
        want="deleted $en_net move;created net_evn0_$en_mac move;"
        [ "$got" = "$want" ] && pass events-net-rename-deleted-created \
            || fail events-net-rename-deleted-created "got '$got' want '$want': $(cat /tmp/evn-rename.txt)"
        ip link set dev evn0 name "$EN_IF"
    else
        wait $w
        fail events-net-rename-deleted-created "ip link set dev $EN_IF name evn0 failed"
    fi

    # A VF under igbvf: its interface comes and goes with it.
    EVN_PF=$(by_id 0x8086 0x10c9 | head -n1)
    if [ -n "$EVN_PF" ]; then
        # add, the interface's add, bind (igbvf): 3 events.
        nodedev -c $U watch --json --count 3 --timeout 5 > /tmp/evn-vf.json 2>&1 &
        w=$!
        sleep 1
        echo 1 > "/sys/bus/pci/devices/$EVN_PF/sriov_numvfs"
        wait $w
        vf=$(basename "$(readlink "/sys/bus/pci/devices/$EVN_PF/virtfn0")")
        vf_if=$(ls "/sys/bus/pci/devices/$vf/net" 2>/dev/null | head -n1)
        vf_pci=$(echo "$vf" | sed 's/[:.]/_/g')
        if [ -n "$vf_if" ]; then
            has /tmp/evn-vf.json created net "pci_$vf_pci" \
                && pass events-net-vf-interface-created \
                || fail events-net-vf-interface-created "$vf has $vf_if: $(head -c 900 /tmp/evn-vf.json)"
        else
            echo "NODEDEV-NOTE events-net: $vf on $(basename "$(readlink "/sys/bus/pci/devices/$vf/driver")") has no interface"
            grep -q '"subsystem":"net"' /tmp/evn-vf.json && fail events-net-vf-interface-created "an interface event without an interface: $(head -c 900 /tmp/evn-vf.json)" \
                || pass events-net-vf-no-interface-no-event
        fi
        nodedev -c $U watch --json --count 3 --timeout 4 > /tmp/evn-vf0.json 2>&1 &
        w=$!
        sleep 1
        echo 0 > "/sys/bus/pci/devices/$EVN_PF/sriov_numvfs"
        wait $w
        if [ -n "$vf_if" ]; then
            has /tmp/evn-vf0.json deleted net "pci_$vf_pci" \
                && pass events-net-vf-interface-deleted \
                || fail events-net-vf-interface-deleted "$(head -c 900 /tmp/evn-vf0.json)"
        fi
    fi
fi
