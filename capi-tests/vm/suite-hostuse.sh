# Host use followed through the stack (issue 11), against the real kernel:
# a bridge whose port is the e1000e and which carries the address, a VLAN
# over an e1000 with the address, swap on the NVMe disk. Each is refused
# naming the chain; --force detaches; reattach puts the bridge port back.
# Sourced by suite.sh (helpers: pass, fail, ok, refused, expect_driver, drv,
# by_id; E, B1 set there). Leaves everything as it found it.

netif() { ls "/sys/bus/pci/devices/$1/net" 2>/dev/null | head -n1; }

modprobe bridge 2>/dev/null; modprobe 8021q 2>/dev/null
EIF=$(netif "$E")
if [ -z "$EIF" ] || ! brctl addbr hbr0 2>/dev/null; then
    fail hostuse-bridge-setup "no interface on $E ($EIF) or no bridge support"
else
    brctl addif hbr0 "$EIF"
    ip link set "$EIF" up; ip link set hbr0 up
    ip addr add 10.77.0.2/24 dev hbr0
    ip route add default via 10.77.0.1 dev hbr0 2>/dev/null || echo "NODEDEV-NOTE no default route on hbr0"
    echo "NODEDEV-NOTE $(nodedev -c $U detach "$E" --driver vfio 2>&1)"
    refused hostuse-bridge-refused "$E is $EIF, a port of bridge hbr0, which has 10.77.0.2/24" \
        nodedev -c $U detach "$E" --driver vfio
    refused hostuse-bridge-refused-names-remedy "ip link set $EIF nomaster" nodedev -c $U detach "$E" --driver vfio
    expect_driver hostuse-bridge-untouched "$E" e1000e
    [ -e "/sys/class/net/hbr0/brif/$EIF" ] && pass hostuse-bridge-port-still-there || fail hostuse-bridge-port-still-there "brif: $(ls /sys/class/net/hbr0/brif)"
    ok hostuse-bridge-force nodedev -c $U detach "$E" --driver vfio --force
    expect_driver hostuse-bridge-force-driver "$E" vfio-pci
    # The kernel took the port out of the bridge with its netdev.
    [ -z "$(ls /sys/class/net/hbr0/brif)" ] && pass hostuse-bridge-port-left || fail hostuse-bridge-port-left "brif: $(ls /sys/class/net/hbr0/brif)"
    grep -q '"master": *"hbr0"' "/run/nodedev/$E.json" && pass hostuse-bridge-membership-recorded \
        || fail hostuse-bridge-membership-recorded "record: $(tr -d '\n' < "/run/nodedev/$E.json")"
    if out=$(nodedev -c $U reattach "$E" 2>&1); then
        echo "$out" | grep -q warning && fail hostuse-bridge-reattach "warned: $out" || pass hostuse-bridge-reattach
    else
        fail hostuse-bridge-reattach "$out"
    fi
    expect_driver hostuse-bridge-reattach-driver "$E" e1000e
    NEWIF=$(netif "$E")
    [ -n "$NEWIF" ] && [ -e "/sys/class/net/hbr0/brif/$NEWIF" ] && pass hostuse-bridge-port-restored \
        || fail hostuse-bridge-port-restored "$E has '$NEWIF', brif: $(ls /sys/class/net/hbr0/brif)"
    # Up again, as it was before.
    [ $(( $(cat "/sys/class/net/$NEWIF/flags") & 1 )) = 1 ] && pass hostuse-bridge-port-up || fail hostuse-bridge-port-up "flags $(cat "/sys/class/net/$NEWIF/flags")"
    refused hostuse-bridge-refused-again "a port of bridge hbr0" nodedev -c $U detach "$E" --driver vfio

    # The bridge is deleted while the port is away: reattach succeeds and says so.
    ok hostuse-bridge-force-again nodedev -c $U detach "$E" --driver vfio --force
    ip link set hbr0 down; brctl delbr hbr0
    if out=$(nodedev -c $U reattach "$E" 2>&1); then
        echo "$out" | grep -q "warning: $E: .*could not rejoin bridge hbr0: bridge hbr0 no longer exists" \
            && pass hostuse-bridge-gone-reported || fail hostuse-bridge-gone-reported "no warning: $out"
    else
        fail hostuse-bridge-gone-reported "reattach failed: $out"
    fi
    expect_driver hostuse-bridge-gone-driver "$E" e1000e
    ip link set "$(netif "$E")" down 2>/dev/null
fi
[ -e /sys/class/net/hbr0 ] && { ip link set hbr0 down; brctl delbr hbr0; }

# A VLAN over an e1000 carries the address.
VIF=$(netif "$B1")
if [ -z "$VIF" ]; then
    fail hostuse-vlan-setup "no interface on $B1"
else
    ip link set "$VIF" up
    ip link add link "$VIF" name hv100 type vlan id 100 2>/dev/null \
        || { vconfig add "$VIF" 100 >/dev/null && ip link set "$VIF.100" name hv100; }
    ip link set hv100 up && ip addr add 10.78.0.2/24 dev hv100
    refused hostuse-vlan-refused "$B1 is $VIF, carrying VLAN hv100, which has 10.78.0.2/24" \
        nodedev -c $U detach "$B1" --driver kvm
    expect_driver hostuse-vlan-untouched "$B1" e1000
    # Without the address, the VLAN alone is no reason to refuse.
    ip addr flush dev hv100
    ok hostuse-vlan-without-address-detaches nodedev -c $U detach "$B1" --driver kvm
    [ ! -e /sys/class/net/hv100 ] && pass hostuse-vlan-went-with-its-link || fail hostuse-vlan-went-with-its-link "hv100 still there"
    ok hostuse-vlan-reattach nodedev -c $U reattach "$B1"
    expect_driver hostuse-vlan-reattach-driver "$B1" e1000
    [ -e /sys/class/net/hv100 ] && { ip link delete hv100 2>/dev/null || vconfig rem hv100; }
    ip link set "$(netif "$B1")" down 2>/dev/null
fi

# A swap partition on the NVMe disk.
NV=$(by_id 0x1b36 0x0010 | head -n1)
# The disk the host sees for a PCI function: with NVMe multipath the
# function has a hidden path device (nvme0c0n1) and the disk is its head.
disk_of() {
    for b in /sys/class/block/*; do
        readlink "$b" | grep -q "/$1/" && [ ! -e "$b/partition" ] || continue
        n=$(basename "$b")
        if [ "$(cat "$b/hidden" 2>/dev/null)" = 1 ]; then
            echo "$n" | sed 's/^nvme\([0-9]*\)c[0-9]*n\([0-9]*\)$/nvme\1n\2/'
        else
            echo "$n"
        fi
    done | head -n1
}
D=""
i=0
while [ -n "$NV" ] && [ -z "$D" ] && [ $i -lt 50 ]; do D=$(disk_of "$NV"); [ -n "$D" ] || usleep 100000; i=$((i + 1)); done
echo "NODEDEV-NOTE nvme=$NV disk=$D block: $(ls /sys/class/block | tr '\n' ' ')"
if [ -z "$D" ]; then
    fail hostuse-swap-setup "no NVMe disk (device ${NV:-none})"
elif ! { printf 'n\np\n1\n\n\nt\n82\nw\n' | fdisk "/dev/$D" >/dev/null 2>&1; sleep 1; P=$(ls "/sys/class/block/$D" | grep "^${D}p1$"); \
          [ -n "$P" ] && mkswap "/dev/$P" >/dev/null && swapon "/dev/$P"; }; then
    fail hostuse-swap-setup "partition, mkswap or swapon on /dev/$D failed: $(ls "/sys/class/block/$D" | tr '\n' ' ')"
else
    echo "NODEDEV-NOTE $(nodedev -c $U detach "$NV" --driver vfio 2>&1)"
    refused hostuse-swap-refused "$NV is $D.*, whose partition $P is active swap" nodedev -c $U detach "$NV" --driver vfio
    refused hostuse-swap-refused-names-remedy "swapoff /dev/$P" nodedev -c $U prepare vm1 "$NV" --managed
    expect_driver hostuse-swap-untouched "$NV" nvme
    grep -q "^/dev/$P " /proc/swaps && pass hostuse-swap-still-active || fail hostuse-swap-still-active "$(cat /proc/swaps)"
    swapoff "/dev/$P"
    ok hostuse-swap-off-detaches nodedev -c $U detach "$NV" --driver vfio
    expect_driver hostuse-swap-detached-driver "$NV" vfio-pci
    ok hostuse-swap-reattach nodedev -c $U reattach "$NV"
    expect_driver hostuse-swap-reattach-driver "$NV" nvme
    i=0; D2=""
    while [ -z "$D2" ] && [ $i -lt 50 ]; do D2=$(disk_of "$NV"); [ -n "$D2" ] || usleep 100000; i=$((i + 1)); done
    i=0
    while [ ! -e "/dev/${D2}p1" ] && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
    if [ -n "$D2" ] && swapon "/dev/${D2}p1" && swapoff "/dev/${D2}p1"; then pass hostuse-swap-partition-back
    else fail hostuse-swap-partition-back "disk '$D2' after reattach: $(ls "/sys/class/block/$D2" 2>/dev/null | tr '\n' ' ')"; fi
fi

left=$(ls /run/nodedev/*.json 2>/dev/null | wc -l)
[ "$left" = 0 ] && pass hostuse-no-records-left || fail hostuse-no-records-left "$left records left"
