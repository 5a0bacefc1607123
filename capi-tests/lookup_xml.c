/*
 * Lookup by both name forms, and the node-device XML: name, parent, driver,
 * <capability type='pci'>, IOMMU group, SR-IOV functions.
 */
#include "check.h"

static void contains(const char *xml, const char *what, const char *dev)
{
    CHECK(xml != NULL && strstr(xml, what) != NULL, "%s: XML should contain %s", dev, what);
}

static void lacks(const char *xml, const char *what, const char *dev)
{
    CHECK(xml != NULL && strstr(xml, what) == NULL, "%s: XML should not contain %s", dev, what);
}

static char *xml_of(virConnectPtr conn, const char *name)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, name);
    char *xml;
    CHECK(dev != NULL, "lookup %s", name);
    if (dev == NULL)
        return NULL;
    xml = virNodeDeviceGetXMLDesc(dev, 0);
    CHECK(xml != NULL, "XML of %s", name);
    virNodeDeviceFree(dev);
    return xml;
}

static void both_forms(virConnectPtr conn)
{
    static const char *const pairs[][2] = {
        {"pci_0000_01_00_1", "0000:01:00.1"},
        {"pci_0000_04_10_4", "0000:04:10.4"},
        {"pci_0000_00_1f_3", "0000:00:1f.3"},
        {"pci_0000_00_00_0", "0000:00:00.0"},
    };
    size_t i;
    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        virNodeDevicePtr a = virNodeDeviceLookupByName(conn, pairs[i][0]);
        virNodeDevicePtr b = virNodeDeviceLookupByName(conn, pairs[i][1]);
        CHECK(a != NULL && b != NULL, "both forms of %s look up", pairs[i][0]);
        if (a != NULL && b != NULL) {
            CHECK(strcmp(virNodeDeviceGetName(a), pairs[i][0]) == 0, "%s: name", pairs[i][0]);
            CHECK(strcmp(virNodeDeviceGetName(b), pairs[i][0]) == 0, "%s: name from kernel form",
                  pairs[i][1]);
            CHECK(a != b, "two lookups, two handles");
        }
        if (a != NULL)
            virNodeDeviceFree(a);
        if (b != NULL)
            virNodeDeviceFree(b);
    }
}

static void xml(virConnectPtr conn)
{
    char *x = xml_of(conn, "pci_0000_01_00_1");
    contains(x, "<device>", "audio");
    contains(x, "<name>pci_0000_01_00_1</name>", "audio");
    contains(x, "<parent>pci_0000_00_01_0</parent>", "audio");
    contains(x, "<driver>", "audio");
    contains(x, "<name>snd_hda_intel</name>", "audio");
    contains(x, "<capability type='pci'>", "audio");
    contains(x, "<function>1</function>", "audio");
    contains(x, "<iommuGroup number='2'>", "audio");
    contains(x, "<address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>", "audio group: GPU");
    contains(x, "<address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>", "audio group: itself");
    contains(x, "</device>", "audio");
    free(x);

    x = xml_of(conn, "0000:05:00.0");
    contains(x, "<name>pci_0000_05_00_0</name>", "edu");
    lacks(x, "<driver>", "edu (no driver)");
    contains(x, "<capability type='pci'>", "edu");
    contains(x, "<iommuGroup number=", "edu");
    free(x);

    x = xml_of(conn, "pci_0000_03_01_0");
    contains(x, "<name>e1000</name>", "e1000");
    contains(x, "<iommuGroup number='5'>", "e1000");
    contains(x, "<address domain='0x0000' bus='0x03' slot='0x02' function='0x0'/>", "e1000 group: other NIC");
    contains(x, "<address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>", "e1000 group: bridge");
    free(x);

    x = xml_of(conn, "pci_0000_04_00_0");
    contains(x, "<name>igb</name>", "PF");
    contains(x, "<capability type='virt_functions'", "PF");
    contains(x, "<address domain='0x0000' bus='0x04' slot='0x10' function='0x2'/>", "PF: VF 2");
    free(x);

    x = xml_of(conn, "pci_0000_04_10_0");
    contains(x, "<name>igbvf</name>", "VF");
    contains(x, "<capability type='phys_function'>", "VF");
    contains(x, "<address domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>", "VF: its PF");
    free(x);
}

int main(void)
{
    virConnectPtr conn = virConnectOpenReadOnly("test:///default");
    CHECK(conn != NULL, "virConnectOpenReadOnly(test:///default)");
    if (conn == NULL)
        return check_summary("lookup_xml");
    both_forms(conn);
    xml(conn);
    CHECK_NO_ERROR("after successful calls");
    virConnectClose(conn);
    return check_summary("lookup_xml");
}
