/*
 * Code written for libvirt's node-device API, unchanged: it includes only
 * libvirt's own headers and is linked with -lnodedev instead of -lvirt
 * (tests/ecosystem.rs). Runs the whole cycle on test:///default and reads
 * errors through libvirt's virError struct. Prints "N passed, M failed".
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
#define CHECK(c, what)                                                          \
    do {                                                                        \
        if (c) {                                                                \
            passed++;                                                           \
        } else {                                                                \
            failed++;                                                           \
            fprintf(stderr, "FAIL line %d: %s [%s]\n", __LINE__, what,          \
                    virGetLastErrorMessage());                                  \
        }                                                                       \
    } while (0)

static int has_driver(virNodeDevicePtr dev, const char *driver)
{
    char *xml = virNodeDeviceGetXMLDesc(dev, 0), want[128];
    int found;
    if (xml == NULL)
        return 0;
    snprintf(want, sizeof want, "<name>%s</name>", driver);
    found = strstr(xml, "<driver>") != NULL && strstr(xml, want) != NULL;
    free(xml);
    return found;
}

int main(void)
{
    const char *drivers[][2] = {{"vfio", "vfio-pci"}, {"kvm", "pci-stub"}, {"xen", "xen-pciback"}};
    virConnectPtr conn = virConnectOpen("test:///default");
    virNodeDevicePtr *devs = NULL, vf;
    virErrorPtr err;
    virError copy;
    char *uri;
    int n, i;

    CHECK(conn != NULL, "virConnectOpen");
    if (conn == NULL)
        return 1;
    uri = virConnectGetURI(conn);
    CHECK(uri != NULL && strcmp(uri, "test:///default") == 0, "virConnectGetURI");
    free(uri);

    n = virConnectListAllNodeDevices(conn, &devs, VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV);
    CHECK(n > 10, "virConnectListAllNodeDevices");
    for (i = 0; i < n; i++)
        virNodeDeviceFree(devs[i]);
    free(devs);
    CHECK(virNodeNumOfDevices(conn, "pci", 0) == n, "virNodeNumOfDevices");

    vf = virNodeDeviceLookupByName(conn, "pci_0000_04_10_0");
    CHECK(vf != NULL, "virNodeDeviceLookupByName");
    if (vf == NULL)
        return 1;
    CHECK(strcmp(virNodeDeviceGetName(vf), "pci_0000_04_10_0") == 0, "virNodeDeviceGetName");
    CHECK(strcmp(virNodeDeviceGetParent(vf), "pci_0000_00_1d_0") == 0, "virNodeDeviceGetParent");
    CHECK(has_driver(vf, "igbvf"), "XML names the host driver");

    for (i = 0; i < 3; i++) {
        CHECK(virNodeDeviceDetachFlags(vf, drivers[i][0], 0) == 0, drivers[i][0]);
        CHECK(has_driver(vf, drivers[i][1]), drivers[i][1]);
        CHECK(virNodeDeviceReset(vf) == 0, "virNodeDeviceReset on the stub");
        CHECK(virNodeDeviceReAttach(vf) == 0, "virNodeDeviceReAttach");
        CHECK(has_driver(vf, "igbvf"), "back on igbvf");
    }
    CHECK(virNodeDeviceDettach(vf) == 0 && has_driver(vf, "vfio-pci"), "virNodeDeviceDettach");
    CHECK(virNodeDeviceReAttach(vf) == 0, "reattach after Dettach");

    /* Errors, read through libvirt's struct layout and constants. */
    CHECK(virNodeDeviceLookupByName(conn, "pci_0000_ff_1f_7") == NULL, "lookup of a missing device");
    err = virGetLastError();
    CHECK(err != NULL && err->code == VIR_ERR_NO_NODE_DEVICE && err->domain == VIR_FROM_NODEDEV &&
              err->level == VIR_ERR_ERROR && err->message != NULL &&
              strstr(err->message, "0000:ff:1f.7") != NULL,
          "virError of a missing device");
    CHECK(virNodeDeviceDetachFlags(vf, "vfio-pci", 0) == -1, "a kernel module name is refused");
    CHECK(virCopyLastError(&copy) == VIR_ERR_INVALID_ARG && copy.code == VIR_ERR_INVALID_ARG, "virCopyLastError");
    virResetError(&copy);
    /* As libvirt: reattaching a device that is on its host driver succeeds. */
    CHECK(virNodeDeviceReAttach(vf) == 0, "reattach of an attached device is a no-op");
    CHECK(virNodeDeviceReset(vf) == -1 && virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID,
          "reset of a device on its host driver");
    virResetLastError();
    CHECK(virGetLastError() == NULL, "virResetLastError");

    virNodeDeviceFree(vf);
    CHECK(virConnectClose(conn) == 0, "virConnectClose");
    printf("libvirt_headers: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
