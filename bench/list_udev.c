/* The enumeration peer with libudev: what libvirt's node-device driver
 * (node_device_udev.c) reads of each PCI device, producing the same XML as
 * bench/list_xml.c: a udev enumeration of subsystem "pci"; per device the
 * class from its properties (uevent), vendor/device/numa_node attributes,
 * the driver, the parent; names from pci.ids through libpciaccess's
 * pci_get_strings, as libvirt's udevTranslatePCIIds; SR-IOV links and the
 * IOMMU group read as libvirt's virpci.c reads them.
 *
 * usage: list_udev [-p]    -p prints the XML (bench/compare_xml.py) */
#include <libudev.h>
#include <pciaccess.h>

#include "pcixml.h"

static unsigned attr_hex(struct udev_device *d, const char *name)
{
    const char *v = udev_device_get_sysattr_value(d, name);
    return v ? (unsigned)strtoul(v, NULL, 16) : 0;
}

int main(int argc, char **argv)
{
    struct pcix_out out;
    struct udev *udev = udev_new();
    struct udev_enumerate *en;
    struct udev_list_entry *e;

    if (!udev || pcix_open(&out, argc, argv) < 0)
        return 1;
    en = udev_enumerate_new(udev);
    udev_enumerate_add_match_subsystem(en, "pci");
    if (udev_enumerate_scan_devices(en) < 0) {
        fprintf(stderr, "udev enumeration failed\n");
        return 1;
    }
    udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en)) {
        struct udev_device *d = udev_device_new_from_syspath(udev, udev_list_entry_get_name(e));
        struct udev_device *p;
        struct pci_id_match m = {0};
        const char *vname = NULL, *pname = NULL, *klass, *numa, *group_link;
        char parent[64] = "computer", target[PATH_MAX], path[PATH_MAX];
        struct pcix_dev x;
        int group = -1;
        ssize_t k;

        if (!d)
            continue;
        klass = udev_device_get_property_value(d, "PCI_CLASS");
        m.vendor_id = attr_hex(d, "vendor");
        m.device_id = attr_hex(d, "device");
        m.subvendor_id = PCI_MATCH_ANY;
        m.subdevice_id = PCI_MATCH_ANY;
        pci_get_strings(&m, &pname, &vname, NULL, NULL);
        p = udev_device_get_parent(d);
        if (p && udev_device_get_subsystem(p) && strcmp(udev_device_get_subsystem(p), "pci") == 0)
            pcix_node_name(parent, sizeof(parent), udev_device_get_sysname(p));
        numa = udev_device_get_sysattr_value(d, "numa_node");
        /* libvirt: virPCIDeviceAddressGetIOMMUGroupNum, a readlink. */
        snprintf(path, sizeof(path), "%s/iommu_group", udev_device_get_syspath(d));
        if ((k = readlink(path, target, sizeof(target) - 1)) > 0) {
            target[k] = 0;
            group_link = strrchr(target, '/');
            group = atoi(group_link ? group_link + 1 : target);
        }
        x = (struct pcix_dev){
            .addr = udev_device_get_sysname(d),
            .path = udev_device_get_syspath(d),
            .parent = parent,
            .driver = udev_device_get_driver(d),
            .klass = klass ? (unsigned)strtoul(klass, NULL, 16) : 0,
            .vendor = m.vendor_id,
            .device = m.device_id,
            .vname = vname,
            .pname = pname,
            .dir = udev_device_get_syspath(d),
            .group = group,
            .numa = numa ? strtol(numa, NULL, 10) : -1,
        };
        pcix_device(&out, &x);
        udev_device_unref(d);
    }
    udev_enumerate_unref(en);
    udev_unref(udev);
    return pcix_close(&out);
}
