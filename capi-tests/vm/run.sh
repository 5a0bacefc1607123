#!/usr/bin/env bash
# Real-kernel suite: boot a disposable QEMU guest (q35 + emulated VT-d) whose
# kernel has real vfio-pci, pci-stub, e1000e/e1000 and real IOMMU groups, run
# the nodedev CLI against its /sys, and report `N passed, M failed`.
#
#   bash capi-tests/vm/run.sh [--no-install]
#
# Other guest programs (bench/vm-detach.sh) reuse it through the environment:
#   NODEDEV_VM_GUEST_SCRIPT  run this script in the guest instead of suite.sh
#   NODEDEV_VM_BINS          more programs for the guest's /bin, with their
#                            shared libraries (copied after the CLI, so a
#                            `nodedev` here replaces the crash-hooks build)
#   NODEDEV_VM_SHARE_USR=1   this machine's /usr, READ-ONLY over virtio-9p,
#                            mounted at the guest's /usr (python3, bash, lspci)
#   NODEDEV_VM_SMP           guest CPUs (default 1)
#   NODEDEV_VM_TIMEOUT       seconds before the guest is called hung (default 600)
#
# Never touches this machine's /sys: every driver change happens in the guest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${NODEDEV_VM_CACHE:-$top/target/vm-cache}
# The suite takes about 3 minutes under TCG on a quiet machine; a loaded one
# has taken 290 s, so the bound leaves room before calling the guest hung.
timeout_s=${NODEDEV_VM_TIMEOUT:-600}
guest_script=${NODEDEV_VM_GUEST_SCRIPT:-$here/suite.sh}
share_usr=${NODEDEV_VM_SHARE_USR:-0}
install=1
[ "${1:-}" = "--no-install" ] && install=0

die() { echo "vm: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

if [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    need=""
    # pciutils and pci.ids: names in the guest, checked against lspci (suite-names.sh).
    for p in qemu-system-x86 busybox-static kmod cpio gcc libc6-dev pciutils pci.ids; do
        dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
    done
    if [ -n "$need" ]; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $need >/dev/null
    fi
fi
# SR-IOV needs QEMU's igb (QEMU >= 8: bookworm-backports on Debian 12). The
# backports entry is derived from the machine's own Debian source.
has_igb() { qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"'; }
if [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && ! has_igb && [ -f /etc/apt/sources.list.d/debian.sources ] \
    && grep -q bookworm /etc/apt/sources.list.d/debian.sources; then
    bp=/etc/apt/sources.list.d/nodedev-backports.sources
    if [ ! -f "$bp" ]; then
        awk 'BEGIN{RS=""} /Suites:.*bookworm( |$|\n)/ {print; exit}' /etc/apt/sources.list.d/debian.sources \
            | sed -E 's/^Suites:.*/Suites: bookworm-backports/' > "$bp"
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null \
        || echo "vm: note: no QEMU with igb from backports; SR-IOV checks will be skipped"
fi
for t in qemu-system-x86_64 busybox depmod cpio gcc; do
    command -v "$t" >/dev/null || [ -x "/bin/$t" ] || die "missing $t (run as root without --no-install)"
done

# The guest kernel: downloaded and unpacked once, never installed here.
mkdir -p "$cache"
if [ ! -d "$cache/kernel/boot" ]; then
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$pkg" ] || die "cannot tell which kernel linux-image-amd64 depends on"
    (cd "$cache" && apt-get download "$pkg" 2>/dev/null)
    rm -rf "$cache/kernel.tmp" && mkdir "$cache/kernel.tmp"
    dpkg-deb -x "$cache"/linux-image-*.deb "$cache/kernel.tmp"
    mv "$cache/kernel.tmp" "$cache/kernel"
fi
kver=$(ls "$cache/kernel/lib/modules" | head -n1)
vmlinuz="$cache/kernel/boot/vmlinuz-$kver"
[ -f "$cache/kernel/lib/modules/$kver/modules.dep" ] || depmod -b "$cache/kernel" "$kver"

# The guest's CLI has the test-only pause points (feature crash-hooks), in a
# target dir of its own so the shipped build never carries them.
vmtarget="$top/target/vm-build"
(cd "$top" && cargo build --release --quiet --features crash-hooks --target-dir "$vmtarget" --bin nodedev) \
    || die "cargo build failed"
# rustapi: a Rust VMM's calls through the Rust API (suite-rustapi.sh).
(cd "$top" && cargo build --release --quiet --features crash-hooks --target-dir "$vmtarget" --example vmm_passthrough) \
    || die "cargo build --example vmm_passthrough failed"
gcc -static -O2 -o "$cache/vfio_group_status" "$here/vfio_group_status.c" || die "cannot build vfio_group_status"
gcc -static -O2 -o "$cache/vfio_hold" "$here/vfio_hold.c" || die "cannot build vfio_hold"
# libvirt fidelity checks: a program written against libvirt's headers,
# linked statically with libnodedev.a (libvirt-dev: installed by .ci/run).
rm -f "$cache/libvirt_fidelity"
if [ -f /usr/include/libvirt/libvirt.h ]; then
    (cd "$top" && cargo build --release --quiet --lib) || die "cargo build --lib failed"
    gcc -static -O2 -Wall -Werror -Wno-deprecated-declarations -o "$cache/libvirt_fidelity" \
        "$here/libvirt_fidelity.c" "$top/target/release/libnodedev.a" -lpthread -ldl -lm \
        || die "cannot build libvirt_fidelity"
elif [ -n "${NODEDEV_CI:-}" ]; then
    die "libvirt-dev is missing: .ci/run installs it"
fi
# Events (issue 12, item 5): a libvirt client on the default event loop.
rm -f "$cache/libvirt_events"
if [ -f /usr/include/libvirt/libvirt.h ]; then
    gcc -static -O2 -Wall -Werror -Wno-deprecated-declarations -o "$cache/libvirt_events" \
        "$here/libvirt_events.c" "$top/target/release/libnodedev.a" -lpthread -ldl -lm \
        || die "cannot build libvirt_events"
elif [ -n "${NODEDEV_CI:-}" ]; then
    die "libvirt-dev is missing: .ci/run installs it"
fi

# initramfs: busybox, the modules we need with their dependencies, the CLI
# with its shared libraries, the suite.
root="$cache/initramfs"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,run,tmp,lib/x86_64-linux-gnu,lib64,etc}
cp "$(command -v busybox || echo /bin/busybox)" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
moddir="lib/modules/$kver"
mkdir -p "$root/$moddir"
want="vfio vfio_iommu_type1 vfio-pci vfio-pci-core pci-stub xen-pciback e1000e e1000 igb igbvf"
# Host-use checks (suite-hostuse.sh): a bridge, a VLAN, swap on an NVMe disk.
want="$want bridge 8021q nvme nvme-core"
[ "$share_usr" = 1 ] && want="$want virtio_pci 9pnet_virtio 9p"
for m in $want; do
    line=$(grep -E "(^|/)${m}\.ko:" "$cache/kernel/$moddir/modules.dep" || true)
    [ -n "$line" ] || { echo "vm: note: module $m not in this kernel"; continue; }
    for f in $(echo "$line" | tr -d ':'); do
        mkdir -p "$root/$moddir/$(dirname "$f")"
        cp -n "$cache/kernel/$moddir/$f" "$root/$moddir/$f"
    done
done
cp "$cache/kernel/$moddir"/modules.{order,builtin,builtin.modinfo} "$root/$moddir/" 2>/dev/null || true
depmod -b "$root" "$kver"
cp "$vmtarget/release/nodedev" "$cache/vfio_group_status" "$cache/vfio_hold" "$root/bin/"
cp "$vmtarget/release/examples/vmm_passthrough" "$root/bin/"  # rustapi
for lib in $(ldd "$vmtarget/release/nodedev" | grep -o '/[^ ]*'); do
    cp -L "$lib" "$root/lib/x86_64-linux-gnu/"
done
for bin in ${NODEDEV_VM_BINS:-}; do
    cp "$bin" "$root/bin/"
    for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
        cp -L "$lib" "$root/lib/x86_64-linux-gnu/"
    done
done
# Names (suite-names.sh): the PCI ID database nodedev reads, and pciutils'
# lspci with its libraries to check nodedev's names against.
ids=
for f in /usr/share/misc/pci.ids /usr/share/hwdata/pci.ids; do
    [ -z "$ids" ] && [ -f "$f" ] && ids=$f
done
[ -n "$ids" ] || die "no pci.ids (Debian package pci.ids or hwdata)"
mkdir -p "$root/usr/share/misc"
cp -L "$ids" "$root/usr/share/misc/pci.ids"
lspci_bin=$(command -v lspci || echo /usr/bin/lspci)
[ -x "$lspci_bin" ] || die "no lspci (Debian package pciutils)"
rm -f "$root/bin/lspci" # busybox's applet shows no names
cp "$lspci_bin" "$root/bin/lspci"
for lib in $(ldd "$lspci_bin" | grep -o '/[^ ]*'); do
    cp -L "$lib" "$root/lib/x86_64-linux-gnu/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
cp "$here/init" "$root/init"
cp "$guest_script" "$root/suite.sh"
# Topic sections that suite.sh sources (suite-<topic>.sh).
cp "$here"/suite-*.sh "$root/"
[ -f "$cache/libvirt_fidelity" ] && cp "$cache/libvirt_fidelity" "$root/bin/"
[ -f "$cache/libvirt_events" ] && cp "$cache/libvirt_events" "$root/bin/"
# init mounts the share when this marker is there.
[ "$share_usr" = 1 ] && touch "$root/share-usr"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$cache/initramfs.gz"

# The guest: an e1000e alone behind a root port, a conventional PCI bridge
# with two e1000 (one group), the edu device (no driver), ICH9 (multi-function
# group), an igb PF (SR-IOV), an NVMe disk.
sriov=()
if has_igb; then
    sriov=(-device pcie-root-port,id=rp4,chassis=4,slot=4 -device igb,bus=rp4)
else
    echo "vm: note: this QEMU has no igb device: SR-IOV checks skipped"
fi
# A small NVMe disk for swap (suite-hostuse.sh), fresh each run.
nvme_img="$cache/hostuse-nvme.img"
rm -f "$nvme_img" && truncate -s 16M "$nvme_img"
nvme=(-drive "file=$nvme_img,if=none,format=raw,id=swapdisk"
      -device pcie-root-port,id=rp5,chassis=5,slot=5 -device nvme,serial=swap,drive=swapdisk,bus=rp5)
share=()
[ "$share_usr" = 1 ] && share=(-virtfs local,path=/usr,mount_tag=hostusr,security_model=none,readonly=on)
log="$cache/last-serial.log"
start=$(date +%s)
set +e
timeout "$timeout_s" qemu-system-x86_64 \
    -machine q35,kernel-irqchip=split -accel tcg -m 512 -smp "${NODEDEV_VM_SMP:-1}" \
    -device intel-iommu,intremap=on,caching-mode=on \
    -display none -no-reboot -nic none \
    -device pcie-root-port,id=rp1,chassis=1,slot=1 -device e1000e,bus=rp1 \
    -device pci-bridge,id=br1,chassis_nr=2 \
    -device e1000,bus=br1,addr=1 -device e1000,bus=br1,addr=2 \
    -device pcie-root-port,id=rp2,chassis=3,slot=3 -device edu,bus=rp2 \
    "${sriov[@]}" "${nvme[@]}" "${share[@]}" \
    -kernel "$vmlinuz" -initrd "$cache/initramfs.gz" \
    -append "console=ttyS0 intel_iommu=on iommu=pt panic=-1 quiet" \
    -serial "file:$log" </dev/null
rc=$?
set -e
echo "vm: guest ran $(( $(date +%s) - start )) s (qemu exit $rc), serial log: $log"

# ---- libvirt's device tree (suite-tree.sh): the guest printed every node's
# XML before and after a detach, and its host description; validate them
# against libvirt's nodedev.rng here (xmllint: libxml2-utils, the schema:
# libvirt0; .ci/run installs both). Results go into the log as checks.
# ---- perf2: only the suite prints the tree; a benchmark's guest script
# (bench/vm-*.sh, NODEDEV_VM_GUEST_SCRIPT) does not, and its run must not
# fail these checks.
tree_checks=0
[ "$guest_script" = "$here/suite.sh" ] && tree_checks=1
out="" names=""
rng=/usr/share/libvirt/schemas/nodedev.rng
xmldir="$cache/guest-xml"
rm -rf "$xmldir" && mkdir -p "$xmldir"
tr -d '\r' < "$log" | awk -v dir="$xmldir" '
    /^NODEDEV-XML-BEGIN / { f = dir "/" $2 "-" $3 ".xml"; next }
    /^NODEDEV-XML-END/ { close(f); f = ""; next }
    /^NODEDEV-HOST-BEGIN/ { f = dir "/guest-host.json"; next }
    /^NODEDEV-HOST-END/ { close(f); f = ""; next }
    f != "" { print > f }'
if [ "$tree_checks" = 0 ]; then
    :
elif command -v xmllint >/dev/null && [ -f "$rng" ]; then
    for tag in before-detach after-detach; do
        n=$(ls "$xmldir" | grep -c "^$tag-" || true)
        if [ "$n" -gt 0 ] && out=$(xmllint --noout --relaxng "$rng" "$xmldir/$tag"-*.xml 2>&1); then
            echo "NODEDEV-TEST PASS tree-guest-xml-validates-$tag-$n-documents" >> "$log"
        else
            echo "NODEDEV-TEST FAIL tree-guest-xml-validates-$tag: $n documents: $(echo "$out" | grep -v validates | head -5 | tr '\n' ' ')" >> "$log"
        fi
    done
    # The dumped guest host as a simulated host, every node's XML from it.
    host_json="$xmldir/guest-host.json"
    sim_cli="$vmtarget/release/nodedev"
    if [ -s "$host_json" ] && names=$("$sim_cli" -c "test://$host_json" nodes 2>&1); then
        bad=0
        for n in $names; do
            "$sim_cli" -c "test://$host_json" show "$n" > "$xmldir/dumped-$n.xml" || bad=1
        done
        if [ "$bad" = 0 ] && out=$(xmllint --noout --relaxng "$rng" "$xmldir"/dumped-*.xml 2>&1); then
            echo "NODEDEV-TEST PASS tree-dumped-guest-host-xml-validates-$(echo $names | wc -w)-documents" >> "$log"
        else
            echo "NODEDEV-TEST FAIL tree-dumped-guest-host-xml-validates: $(echo "$out" | grep -v validates | head -5 | tr '\n' ' ')" >> "$log"
        fi
    else
        echo "NODEDEV-TEST FAIL tree-dumped-guest-host: no description or it does not load: $(echo $names | head -c 300)" >> "$log"
    fi
elif [ -n "${NODEDEV_CI:-}" ]; then
    echo "NODEDEV-TEST FAIL tree-guest-xml: xmllint or $rng missing (.ci/run installs libxml2-utils and libvirt0)" >> "$log"
else
    echo "vm: note: xmllint or $rng missing: the guest's XML is not validated"
fi

grep -a "^NODEDEV-" "$log" | tr -d '\r' | grep -v "^NODEDEV-SUITE" || true
passed=$(grep -ac "^NODEDEV-TEST PASS" "$log" || true)
failed=$(grep -ac "^NODEDEV-TEST FAIL" "$log" || true)
if ! grep -aq "^NODEDEV-SUITE-END" "$log"; then
    echo "vm: the suite did not finish (timeout ${timeout_s}s or guest crash); see $log"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
