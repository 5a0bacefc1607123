# libvirt's device tree on the real kernel (issue 12 items 2 and 3): the
# computer root with QEMU's DMI strings, a net_IFNAME_MAC device per
# interface of a PCI function, pci-bridge and pci-express from the real
# configuration space; every node's XML printed between markers, before and
# after a detach, and the host dumped, for run.sh to validate against
# libvirt's nodedev.rng on the host (the guest has no xmllint).
tree_name() { echo "$1" | tr ':.' '__'; }
names=$(nodedev -c $U nodes)
echo "$names" | grep -qx computer && pass tree-computer-listed || fail tree-computer-listed "$(echo $names)"
x=$(nodedev -c $U show computer 2>&1)
want_vendor=$(cat /sys/class/dmi/id/sys_vendor 2>/dev/null)
# The UUID: product_uuid, unless it is no UUID (QEMU without -uuid gives all
# zeros): then one made up, as libvirtd makes one.
uuid=$(cat /sys/class/dmi/id/product_uuid)
case "$uuid" in
    ""|00000000-0000-0000-0000-000000000000) uuid_ok() { echo "$x" | grep -q "<uuid>[0-9a-f-]\{36\}</uuid>" && ! echo "$x" | grep -q "<uuid>$uuid</uuid>"; } ;;
    *) uuid_ok() { echo "$x" | grep -q "<uuid>$uuid</uuid>"; } ;;
esac
if [ -n "$want_vendor" ] && echo "$x" | grep -q "<vendor>$want_vendor</vendor>" && echo "$x" | grep -q "<capability type='system'>" \
    && echo "$x" | grep -q "<version>$(cat /sys/class/dmi/id/product_version)</version>" \
    && echo "$x" | grep -q "<release_date>$(cat /sys/class/dmi/id/bios_date)</release_date>" && uuid_ok; then
    pass tree-computer-dmi
else
    fail tree-computer-dmi "sys_vendor '$want_vendor' uuid $uuid: $(echo $x)"
fi

ifc=$(ls "/sys/bus/pci/devices/$E/net" 2>/dev/null | head -n1)
mac=$(cat "/sys/class/net/$ifc/address" 2>/dev/null)
NET="net_${ifc}_$(echo "$mac" | tr ':' '_')"
echo "NODEDEV-NOTE e1000e interface $ifc $mac -> $NET"
echo "$names" | grep -qx "$NET" && pass tree-net-named-as-libvirt || fail tree-net-named-as-libvirt "no $NET in: $(echo $names)"
x=$(nodedev -c $U show "$NET" 2>&1)
echo "$x" | grep -q "<parent>pci_$(tree_name "$E")</parent>" && echo "$x" | grep -q "<address>$mac</address>" \
    && echo "$x" | grep -q "<capability type='80203'/>" && pass tree-net-parent-address \
    || fail tree-net-parent-address "$(echo $x)"
state=$(cat "/sys/class/net/$ifc/operstate")
echo "$x" | grep -q "state='$state'" && pass tree-net-link-state || fail tree-net-link-state "operstate $state: $(echo $x)"
# e1000e offloads receive checksums (ethtool -k: rx-checksumming on).
echo "$x" | grep -q "<feature name='rx'/>" && pass tree-net-features || fail tree-net-features "$(echo $x)"
n_if=0; for d in /sys/bus/pci/devices/*/net/*; do [ -e "$d" ] && n_if=$((n_if + 1)); done
[ "$(echo "$names" | grep -c '^net_')" = "$n_if" ] && pass tree-net-one-per-interface \
    || fail tree-net-one-per-interface "$n_if interfaces, names: $(echo $names)"

# pci-bridge: QEMU's pci-bridge (1b36:0001) and the PCIe root ports (1b36:000c).
BR=$(by_id 0x1b36 0x0001 | head -n1)
RP=$(basename "$(dirname "$(readlink -f "/sys/bus/pci/devices/$E")")")
nodedev -c $U show "$BR" | grep -q "<capability type='pci-bridge'/>" && nodedev -c $U show "$RP" | grep -q "<capability type='pci-bridge'/>" \
    && ! nodedev -c $U show "$E" | grep -q "bridge'/>" && pass tree-pci-bridge || fail tree-pci-bridge "bridge $BR root port $RP"
# pci-express: the e1000e's link, as the kernel's files tell it (port from config space).
gt() { sed 's/ GT.*//; s/\.0$//' "/sys/bus/pci/devices/$E/$1"; }
cap="<link validity='cap' port='[0-9]*' speed='$(gt max_link_speed)' width='$(cat /sys/bus/pci/devices/$E/max_link_width)'/>"
sta="<link validity='sta' speed='$(gt current_link_speed)' width='$(cat /sys/bus/pci/devices/$E/current_link_width)'/>"
x=$(nodedev -c $U show "$E")
echo "$x" | grep -q "$cap" && echo "$x" | grep -q "$sta" && pass tree-pci-express-link || fail tree-pci-express-link "want $cap $sta: $(echo $x)"
nodedev -c $U show "$B1" | grep -q "pci-express" && fail tree-conventional-pci-no-express "$B1" || pass tree-conventional-pci-no-express
echo "NODEDEV-NOTE no QEMU device has VPD: the vpd capability is tested on the simulated kernel only"

tree_dump_xml() { # TAG: every node's XML between markers
    for n in $(nodedev -c $U nodes); do
        echo "NODEDEV-XML-BEGIN $1 $n"
        nodedev -c $U show "$n"
        echo "NODEDEV-XML-END"
    done
}
tree_dump_xml before-detach
ok tree-detach-e1000e nodedev -c $U detach "$E" --driver vfio
nodedev -c $U nodes | grep -qx "$NET" && fail tree-net-gone-after-detach "$NET still listed" || pass tree-net-gone-after-detach
nodedev -c $U show "$NET" >/dev/null 2>&1 && fail tree-net-lookup-after-detach "found" || pass tree-net-lookup-after-detach
tree_dump_xml after-detach
ok tree-reattach-e1000e nodedev -c $U reattach "$E"
expect_driver tree-e1000e-back "$E" e1000e
i=0; while ! nodedev -c $U nodes | grep -qx "$NET" && [ $i -lt 20 ]; do usleep 100000; i=$((i + 1)); done
nodedev -c $U nodes | grep -qx "$NET" && pass tree-net-back-same-name || fail tree-net-back-same-name "$(nodedev -c $U nodes | grep net_ | tr '\n' ' ')"
if nodedev -c $U dump-host > /tmp/tree-host.json; then
    echo "NODEDEV-HOST-BEGIN"
    cat /tmp/tree-host.json
    echo "NODEDEV-HOST-END"
    pass tree-dump-host
else
    fail tree-dump-host "dump-host failed"
fi
