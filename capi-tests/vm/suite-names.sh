# Names (issue 12, item 2): on the real kernel, nodedev's vendor and product
# names come from pci.ids as lspci shows them. Sourced by suite.sh; reads
# only. The guest has the host's pci.ids and pciutils' lspci (run.sh).

# name_in_xml TAG XML: the text of <TAG id='...'>TEXT</TAG>, unescaped; empty when bare.
name_in_xml() {
    echo "$2" | sed -n "s/.*<$1 id='0x[0-9a-f]*'>\(.*\)<\/$1>.*/\1/p" \
        | sed "s/&lt;/</g; s/&gt;/>/g; s/&apos;/'/g; s/&quot;/\"/g; s/&amp;/\&/g"
}
# lspci_name FIELD ADDR: lspci's Vendor or Device name, empty when lspci
# has none ("Device [10d3]"), without the -nn id.
lspci_name() {
    lspci -vmm -nn -D -s "$2" | awk -F '\t' -v f="$1:" '$1 == f { sub(/ \[[0-9a-f]+\]$/, "", $2); print $2 }' \
        | grep -vx "$1"
}

names=ok named=0 vendor_only=0 listed=ok
listing=$(nodedev -c $U list)
for d in $(ls /sys/bus/pci/devices); do
    xml=$(nodedev -c $U show "$d")
    v=$(name_in_xml vendor "$xml") p=$(name_in_xml product "$xml")
    lv=$(lspci_name Vendor "$d") lp=$(lspci_name Device "$d")
    [ "$v" = "$lv" ] || names="$d vendor '$v', lspci '$lv'"
    [ "$p" = "$lp" ] || names="$d product '$p', lspci '$lp'"
    [ -n "$v" ] && [ -n "$p" ] && named=$((named + 1))
    [ -n "$v" ] && [ -z "$p" ] && vendor_only=$((vendor_only + 1))
    # The listing's last column: "VENDOR PRODUCT", the vendor alone, or "-".
    want=${v:--}${p:+ $p}
    echo "$listing" | grep "^$d " | grep -qF -- "$want" || listed="$d: list lacks '$want'"
done
echo "NODEDEV-NOTE names: $named devices named, $vendor_only with the vendor's name only"
[ "$names" = ok ] && pass names-as-lspci || fail names-as-lspci "$names"
[ "$listed" = ok ] && pass names-in-list || fail names-in-list "$listed"
# The e1000e is in every pci.ids: a guest without names fails here.
case "$(nodedev -c $U show "$E")" in
*"<vendor id='0x8086'>Intel Corporation</vendor>"*) pass names-e1000e-vendor ;;
*) fail names-e1000e-vendor "$(nodedev -c $U show "$E" | grep vendor)" ;;
esac
[ "$named" -gt 3 ] && pass names-shown || fail names-shown "only $named devices have names"
