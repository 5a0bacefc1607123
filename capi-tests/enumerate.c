/*
 * Enumerating devices on test:///default: virConnectListAllNodeDevices with
 * its flags, virNodeNumOfDevices / virNodeListDevices, names, parents,
 * capabilities, reference counts and the URI.
 */
#include "check.h"

static const unsigned int PCI = VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV;
static const unsigned int ACTIVE = VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE;
static const unsigned int INACTIVE = VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE;

static void list_all(virConnectPtr conn)
{
    virNodeDevicePtr *devs = NULL;
    int n = virConnectListAllNodeDevices(conn, &devs, 0);
    int i, npci = 0, nnet = 0;

    CHECK(n > 10, "expected more than 10 devices, got %d", n);
    CHECK_NO_ERROR("list all");
    if (n <= 0 || devs == NULL)
        return;
    CHECK(devs[n] == NULL, "the array is NULL-terminated");
    for (i = 0; i < n; i++) {
        const char *name = virNodeDeviceGetName(devs[i]);
        virNodeDevicePtr again;
        /* computer first, the PCI functions in address order, then the interfaces. */
        int pci = name != NULL && strncmp(name, "pci_", 4) == 0 && strlen(name) == 16;
        int net = name != NULL && strncmp(name, "net_", 4) == 0;
        CHECK(i == 0 ? name != NULL && strcmp(name, "computer") == 0 : pci || net,
              "device %d is named libvirt's way: %s", i, name ? name : "(null)");
        if (name == NULL)
            continue;
        npci += pci;
        nnet += net;
        CHECK(!pci || nnet == 0, "%s: PCI functions before interfaces", name);
        again = virNodeDeviceLookupByName(conn, name);
        CHECK(again != NULL, "%s looks up", name);
        if (again != NULL) {
            const char *p1 = virNodeDeviceGetParent(again), *p2 = virNodeDeviceGetParent(devs[i]);
            CHECK(strcmp(virNodeDeviceGetName(again), name) == 0, "%s: same name back", name);
            CHECK(i == 0 ? p1 == NULL && p2 == NULL : p1 && p2 && strcmp(p1, p2) == 0, "%s: same parent", name);
            virResetLastError();
            CHECK(virNodeDeviceFree(again) == 0, "free %s", name);
        }
        if (pci && npci > 1)
            CHECK(strcmp(virNodeDeviceGetName(devs[i - 1]), name) < 0, "address order at %s", name);
    }
    for (i = 0; i < n; i++)
        CHECK(virNodeDeviceFree(devs[i]) == 0, "free device %d", i);
    free(devs);

    /* Counting only, and every flag combination. */
    CHECK(virConnectListAllNodeDevices(conn, NULL, 0) == n, "count with devices == NULL");
    CHECK(n == 1 + npci + nnet && npci == 21 && nnet == 3, "computer, 21 functions, 3 interfaces: %d", n);
    CHECK(virConnectListAllNodeDevices(conn, NULL, PCI) == npci, "CAP_PCI_DEV: every PCI function");
    CHECK(virConnectListAllNodeDevices(conn, NULL, ACTIVE) == n, "ACTIVE: every device");
    CHECK(virConnectListAllNodeDevices(conn, NULL, PCI | ACTIVE) == npci, "CAP_PCI_DEV|ACTIVE");
    CHECK(virConnectListAllNodeDevices(conn, NULL, ACTIVE | INACTIVE) == n, "ACTIVE|INACTIVE");
    CHECK(virConnectListAllNodeDevices(conn, NULL, INACTIVE) == 0, "INACTIVE: none");
    CHECK(virConnectListAllNodeDevices(conn, NULL, PCI | INACTIVE) == 0, "PCI|INACTIVE: none");
    CHECK(virConnectListAllNodeDevices(conn, NULL, VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET) == nnet,
          "CAP_NET: the interfaces");
    CHECK(virConnectListAllNodeDevices(conn, NULL, VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_DEV |
                                                       VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPD) == 1,
          "USB|VPD: the igb PF's VPD");
    CHECK(virConnectListAllNodeDevices(conn, NULL, PCI | VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET) == npci + nnet,
          "PCI|NET: any of the capabilities");
    CHECK_NO_ERROR("flag combinations");

    /* An empty selection still gives a valid, NULL-terminated array. */
    devs = NULL;
    CHECK(virConnectListAllNodeDevices(conn, &devs, INACTIVE) == 0, "empty list");
    CHECK(devs != NULL && devs[0] == NULL, "empty list is a malloc'ed {NULL}");
    free(devs);

    /* The older calls agree. */
    CHECK(virNodeNumOfDevices(conn, NULL, 0) == n, "virNodeNumOfDevices(NULL)");
    CHECK(virNodeNumOfDevices(conn, "pci", 0) == npci, "virNodeNumOfDevices(\"pci\")");
    CHECK(virNodeNumOfDevices(conn, "usb_device", 0) == 0, "virNodeNumOfDevices(\"usb_device\")");
    {
        char **names = calloc((size_t)n + 1, sizeof(char *));
        int got = virNodeListDevices(conn, "pci", names, n + 1, 0);
        CHECK(got == npci, "virNodeListDevices: %d of %d", got, npci);
        for (i = 0; i < got; i++) {
            CHECK(strncmp(names[i], "pci_", 4) == 0, "listed name %s", names[i]);
            free(names[i]);
        }
        CHECK(names[npci] == NULL, "nothing written past the count");
        got = virNodeListDevices(conn, NULL, names, 3, 0);
        CHECK(got == 3, "maxnames limits the list: %d", got);
        for (i = 0; i < got; i++)
            free(names[i]);
        CHECK(virNodeListDevices(conn, NULL, names, 0, 0) == 0, "maxnames 0");
        CHECK(virNodeListDevices(conn, "usb_device", names, n, 0) == 0, "other capability: none");
        free(names);
    }
}

static void parents_and_caps(virConnectPtr conn)
{
    static const struct {
        const char *name, *parent;
        int ncaps; /* the GPU is a mediated-device parent too: pci, mdev_types */
    } cases[] = {
        {"pci_0000_03_01_0", "pci_0000_02_00_0", 1},
        {"pci_0000_02_00_0", "pci_0000_00_1c_0", 1},
        {"pci_0000_04_10_0", "pci_0000_00_1d_0", 1},
        {"pci_0000_00_02_0", "computer", 2},
        {"pci_0000_00_00_0", "computer", 1},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, cases[i].name);
        const char *parent;
        char *caps[3] = {NULL, NULL, NULL};
        CHECK(dev != NULL, "lookup %s", cases[i].name);
        if (dev == NULL)
            continue;
        parent = virNodeDeviceGetParent(dev);
        CHECK(parent != NULL && strcmp(parent, cases[i].parent) == 0, "%s: parent %s, expected %s",
              cases[i].name, parent ? parent : "(null)", cases[i].parent);
        CHECK(virNodeDeviceNumOfCaps(dev) == cases[i].ncaps, "%s: %d capabilities", cases[i].name, cases[i].ncaps);
        CHECK(virNodeDeviceListCaps(dev, caps, 3) == cases[i].ncaps, "%s: list caps", cases[i].name);
        CHECK(caps[0] != NULL && strcmp(caps[0], "pci") == 0, "%s: first cap is pci", cases[i].name);
        CHECK(cases[i].ncaps == 1 || (caps[1] != NULL && strcmp(caps[1], "mdev_types") == 0),
              "%s: then mdev_types", cases[i].name);
        CHECK(caps[cases[i].ncaps] == NULL, "%s: no more caps written", cases[i].name);
        free(caps[0]);
        free(caps[1]);
        CHECK(virNodeDeviceListCaps(dev, caps, 0) == 0, "%s: maxnames 0", cases[i].name);
        virNodeDeviceFree(dev);
    }
}

static void references(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    virNodeDevicePtr dev;
    const char *name;
    char *uri;

    CHECK(conn != NULL, "open");
    if (conn == NULL)
        return;
    uri = virConnectGetURI(conn);
    CHECK(uri != NULL && strcmp(uri, "test:///default") == 0, "URI: %s", uri ? uri : "(null)");
    free(uri);

    CHECK(virConnectRef(conn) == 0, "connect ref");
    CHECK(virConnectClose(conn) == 1, "close after ref leaves one");

    dev = virNodeDeviceLookupByName(conn, "0000:00:1f.2");
    CHECK(dev != NULL, "lookup by kernel name");
    if (dev == NULL)
        return;
    name = virNodeDeviceGetName(dev);
    CHECK(virNodeDeviceRef(dev) == 0, "device ref");
    CHECK(virNodeDeviceFree(dev) == 0, "free one of two references");
    CHECK(strcmp(name, "pci_0000_00_1f_2") == 0, "name still valid after freeing one reference");
    /* The device holds the connection: closing leaves a reference. */
    CHECK(virConnectClose(conn) > 0, "close with a live device");
    CHECK(strcmp(virNodeDeviceGetParent(dev), "computer") == 0, "device usable after its connection closed");
    {
        char *xml = virNodeDeviceGetXMLDesc(dev, 0);
        CHECK(xml != NULL && strstr(xml, "<name>pci_0000_00_1f_2</name>") != NULL, "XML after close");
        free(xml);
    }
    CHECK(virNodeDeviceFree(dev) == 0, "last free");

    /* Empty URI means the default; read-only connections enumerate too. */
    conn = virConnectOpenReadOnly("test:///default");
    CHECK(conn != NULL && virConnectListAllNodeDevices(conn, NULL, 0) > 10, "read-only list");
    CHECK(virConnectClose(conn) == 0, "close read-only");
}

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    CHECK(conn != NULL, "virConnectOpen(test:///default)");
    if (conn == NULL)
        return check_summary("enumerate");
    list_all(conn);
    parents_and_caps(conn);
    CHECK(virConnectClose(conn) == 0, "close");
    references();
    return check_summary("enumerate");
}
