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
    int print = argc > 1 && strcmp(argv[1], "-p") == 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = print ? stdout : open_memstream(&buf, &len);
    struct pci_access *pacc = pci_alloc();
    struct pci_dev *d;
    int n = 0;

    if (!out)
        return 1;
    pci_init(pacc);
    pci_scan_bus(pacc);
    for (d = pacc->devices; d; d = d->next) {
        char addr[16], dir[PATH_MAX], target[PATH_MAX], path[PATH_MAX + 8];
        char vbuf[256], dbuf[256], parent[64] = "computer";
        const char *vname, *pname, *group, *driver, *rel;
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
        vname = pci_lookup_name(pacc, vbuf, sizeof(vbuf), PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, d->vendor_id);
        pname = pci_lookup_name(pacc, dbuf, sizeof(dbuf), PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, d->vendor_id,
                                d->device_id);
        group = pci_get_string_property(d, PCI_FILL_IOMMU_GROUP);
        driver = pci_get_string_property(d, PCI_FILL_DRIVER);
        pcix_head(out, addr, path, parent, driver, (unsigned)d->device_class << 8 | d->prog_if, d->vendor_id,
                  d->device_id, vname, pname);
        pcix_tail(out, dir, group ? atoi(group) : -1, d->numa_node);
        n++;
    }
    pci_cleanup(pacc);
    fclose(out);
    if (!print)
        printf("%d devices, %zu bytes of XML\n", n, len);
    free(buf);
    return 0;
}
