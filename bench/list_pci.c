/* The enumeration peer with libpci (pciutils' library, what lspci uses):
 * a bus scan, then per device the fields of nodedev's XML that libpci
 * fills (ids, class, driver, NUMA node, IOMMU group, parent) and the names
 * from pci.ids (pci_lookup_name); the canonical path, SR-IOV links and
 * the group's members read by hand as in list_udev.c. Same XML as
 * bench/list_xml.c.
 *
 * usage: list_pci [-p]    -p prints the XML (bench/compare_xml.py) */
#include <pci/pci.h>

#include "pcixml.h"

int main(int argc, char **argv)
{
    struct pcix_out out;
    struct pci_access *pacc = pci_alloc();
    struct pci_dev *d;

    if (pcix_open(&out, argc, argv) < 0)
        return 1;
    pci_init(pacc);
    pci_scan_bus(pacc);
    for (d = pacc->devices; d; d = d->next) {
        char addr[16], dir[PATH_MAX], target[PATH_MAX], path[PATH_MAX + 8];
        char vbuf[256], dbuf[256], parent[64] = "computer";
        const char *group, *rel;
        struct pcix_dev x;
        ssize_t k;

        pci_fill_info(d, PCI_FILL_IDENT | PCI_FILL_CLASS | PCI_FILL_CLASS_EXT | PCI_FILL_NUMA_NODE |
                             PCI_FILL_IOMMU_GROUP | PCI_FILL_DRIVER | PCI_FILL_PARENT);
        snprintf(addr, sizeof(addr), "%04x:%02x:%02x.%d", d->domain, d->bus, d->dev, d->func);
        snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", addr);
        /* The canonical path: libpci does not report it. */
        if ((k = readlink(dir, target, sizeof(target) - 1)) < 0)
            continue;
        target[k] = 0;
        for (rel = target; strncmp(rel, "../", 3) == 0; rel += 3)
            ;
        snprintf(path, sizeof(path), "/sys/%s", rel);
        if (d->parent)
            snprintf(parent, sizeof(parent), "pci_%04x_%02x_%02x_%d", d->parent->domain, d->parent->bus,
                     d->parent->dev, d->parent->func);
        group = pci_get_string_property(d, PCI_FILL_IOMMU_GROUP);
        x = (struct pcix_dev){
            .addr = addr,
            .path = path,
            .parent = parent,
            .driver = pci_get_string_property(d, PCI_FILL_DRIVER),
            .klass = (unsigned)d->device_class << 8 | d->prog_if,
            .vendor = d->vendor_id,
            .device = d->device_id,
            .vname = pci_lookup_name(pacc, vbuf, sizeof(vbuf), PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, d->vendor_id),
            .pname = pci_lookup_name(pacc, dbuf, sizeof(dbuf), PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS,
                                     d->vendor_id, d->device_id),
            .dir = dir,
            .group = group ? atoi(group) : -1,
            .numa = d->numa_node,
        };
        pcix_device(&out, &x);
    }
    pci_cleanup(pacc);
    return pcix_close(&out);
}
