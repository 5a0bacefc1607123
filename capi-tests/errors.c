/*
 * Every bad input gives libvirt's error code: NULL connection
 * (VIR_ERR_INVALID_CONN), NULL device (VIR_ERR_INVALID_NODE_DEVICE), NULL
 * arguments and unknown flags (VIR_ERR_INVALID_ARG), any name that is no
 * device, whatever its shape (VIR_ERR_NO_NODE_DEVICE), bad URIs
 * (VIR_ERR_NO_CONNECT), changes on a read-only connection
 * (VIR_ERR_OPERATION_DENIED). Failed calls leave their out-arguments alone,
 * except virConnectListAllNodeDevices, which sets *devices to NULL first as
 * libvirt does; a successful call clears the last error.
 * (capi-tests/external/libvirt_conformance.c checks each against libvirt's
 * sources.)
 */
#include "check.h"

#define NONE VIR_FROM_NONE
#define NODEDEV VIR_FROM_NODEDEV

static void null_connection(void)
{
    static virNodeDevicePtr sentinel[1];
    virNodeDevicePtr *devs = sentinel; /* set to NULL, even on error */
    char *names[4] = {NULL, NULL, NULL, NULL};

    CHECK(virConnectClose(NULL) == -1, "close NULL");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, NONE, "virConnectClose", "close NULL");
    CHECK(virConnectRef(NULL) == -1, "ref NULL");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, NONE, "virConnectRef", "ref NULL");
    CHECK(virConnectGetURI(NULL) == NULL, "URI of NULL");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, NONE, "virConnectGetURI", "URI NULL");
    CHECK(virConnectListAllNodeDevices(NULL, &devs, 0) == -1, "list NULL");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, NODEDEV, "virConnectListAllNodeDevices", "list NULL");
    CHECK(devs == NULL, "devices set to NULL on error");
    CHECK(virNodeNumOfDevices(NULL, NULL, 0) == -1, "num NULL");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, NODEDEV, "virNodeNumOfDevices", "num NULL");
    CHECK(virNodeListDevices(NULL, NULL, names, 4, 0) == -1, "list names NULL");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, NODEDEV, "virNodeListDevices", "list names NULL");
    CHECK(virNodeDeviceLookupByName(NULL, "pci_0000_03_01_0") == NULL, "lookup NULL conn");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, NODEDEV, "virNodeDeviceLookupByName", "lookup NULL conn");
}

static void null_device(void)
{
    char *caps[1] = {NULL};
    CHECK(virNodeDeviceGetName(NULL) == NULL, "name of NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceGetName", "name NULL");
    CHECK(virNodeDeviceGetParent(NULL) == NULL, "parent of NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceGetParent", "parent NULL");
    CHECK(virNodeDeviceGetXMLDesc(NULL, 0) == NULL, "XML of NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceGetXMLDesc", "XML NULL");
    CHECK(virNodeDeviceNumOfCaps(NULL) == -1, "caps of NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceNumOfCaps", "caps NULL");
    CHECK(virNodeDeviceListCaps(NULL, caps, 1) == -1, "list caps of NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceListCaps", "list caps NULL");
    CHECK(virNodeDeviceRef(NULL) == -1, "ref NULL device");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceRef", "ref NULL dev");
    CHECK(virNodeDeviceFree(NULL) == -1, "free NULL device");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceFree", "free NULL dev");
    CHECK(virNodeDeviceDettach(NULL) == -1, "Dettach NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceDettach", "Dettach NULL");
    CHECK(virNodeDeviceDetachFlags(NULL, "vfio", 0) == -1, "DetachFlags NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceDetachFlags", "DetachFlags NULL");
    CHECK(virNodeDeviceReAttach(NULL) == -1, "ReAttach NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceReAttach", "ReAttach NULL");
    CHECK(virNodeDeviceReAttachFlags(NULL, NULL, 0) == -1, "ReAttachFlags NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceReAttachFlags", "ReAttachFlags NULL");
    CHECK(virNodeDeviceReset(NULL) == -1, "Reset NULL");
    CHECK_ERROR(VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "virNodeDeviceReset", "Reset NULL");
}

static void bad_arguments(virConnectPtr conn)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "pci_0000_04_10_2");
    char *names[2] = {NULL, NULL};

    CHECK(dev != NULL, "lookup");
    if (dev == NULL)
        return;

    CHECK(virNodeDeviceLookupByName(conn, NULL) == NULL, "lookup NULL name");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "name", "NULL name");
    CHECK(virNodeListDevices(conn, NULL, NULL, 4, 0) == -1, "NULL names array");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "names", "NULL names array");
    CHECK(virNodeListDevices(conn, NULL, names, -1, 0) == -1, "negative maxnames");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "maxnames", "negative maxnames");
    CHECK(virNodeDeviceListCaps(dev, NULL, 1) == -1, "NULL caps array");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "names", "NULL caps array");
    CHECK(virNodeDeviceListCaps(dev, names, -2) == -1, "negative caps maxnames");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "maxnames", "negative caps maxnames");
    CHECK(names[0] == NULL && names[1] == NULL, "names untouched on error");

    /* Unknown flags, named with the function. */
    CHECK(virConnectListAllNodeDevices(conn, NULL, 1u << 25) == -1, "list: unknown flag");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "virConnectListAllNodeDevices: unsupported flags (0x2000000)",
                "list flags");
    CHECK(virNodeNumOfDevices(conn, NULL, 1) == -1, "num: flags");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "virNodeNumOfDevices: unsupported flags (0x1)", "num flags");
    CHECK(virNodeListDevices(conn, NULL, names, 2, 2) == -1, "list names: flags");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "virNodeListDevices: unsupported flags (0x2)", "names flags");
    CHECK(virNodeDeviceGetXMLDesc(dev, 1) == NULL, "XML: flags");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "virNodeDeviceGetXMLDesc: unsupported flags (0x1)", "XML flags");
    CHECK(virNodeDeviceDetachFlags(dev, "vfio", 4) == -1, "detach: flags");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "virNodeDeviceDetachFlags: unsupported flags (0x4)",
                "detach flags");
    CHECK(virNodeDeviceReAttachFlags(dev, NULL, 0x80000000u) == -1, "reattach: flags");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "virNodeDeviceReAttachFlags: unsupported flags (0x80000000)",
                "reattach flags");
    CHECK(driver_is(conn, "pci_0000_04_10_2", "igbvf"), "refused calls changed nothing");

    /* Any name that is no device is "no such device", malformed or not (libvirt). */
    {
        static const char *const malformed[] = {
            "", "pci_", "eth0", "0000:03:01", "0000:03:01.8", "0000:03:20.0", "pci_0000_03_01",
            "../../../etc/passwd", "0000:03:01.0\n", "pci_0000_03_01_0 ", "computer ", "net_eth0",
        };
        size_t i;
        for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
            CHECK(virNodeDeviceLookupByName(conn, malformed[i]) == NULL, "lookup '%s'", malformed[i]);
            CHECK_ERROR(VIR_ERR_NO_NODE_DEVICE, NODEDEV, "no node device with matching name", malformed[i]);
        }
    }
    CHECK(virNodeDeviceLookupByName(conn, "pci_0000_0f_00_0") == NULL, "unknown device");
    CHECK_ERROR(VIR_ERR_NO_NODE_DEVICE, NODEDEV, "0000:0f:00.0", "unknown device");
    CHECK(virNodeDeviceLookupByName(conn, "0001:00:00.0") == NULL, "unknown domain");
    CHECK_ERROR(VIR_ERR_NO_NODE_DEVICE, NODEDEV, NULL, "unknown domain");

    /* Driver names: libvirt's abstract names only. */
    CHECK(virNodeDeviceDetachFlags(dev, "vfio-pci", 0) == -1, "kernel module name refused");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "\"vfio\"", "vfio-pci");
    CHECK(virNodeDeviceDetachFlags(dev, "vfio-pci", 0) == -1, "again");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "driverName", "vfio-pci names the argument");
    CHECK(virNodeDeviceDetachFlags(dev, "VFIO", 0) == -1, "wrong case refused");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, "kvm", "VFIO");
    CHECK(virNodeDeviceDetachFlags(dev, "", 0) == -1, "empty driver name refused");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, NODEDEV, NULL, "empty driver name");
    CHECK(driver_is(conn, "pci_0000_04_10_2", "igbvf"), "device untouched by refused detaches");
    virNodeDeviceFree(dev);
}

static void bad_uris(void)
{
    static const char *const uris[] = {
        "http://example.com/", "test:///nonexistent/host.json", "test://relative.json",
        "test:///default?bogus=1", "nodedev:///system?root=relative", "qemu+ssh://host/system",
    };
    size_t i;
    for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        CHECK(virConnectOpen(uris[i]) == NULL, "open %s", uris[i]);
        CHECK_ERROR(VIR_ERR_NO_CONNECT, NONE, NULL, uris[i]);
        CHECK(virConnectOpenReadOnly(uris[i]) == NULL, "open read-only %s", uris[i]);
        CHECK_ERROR(VIR_ERR_NO_CONNECT, NONE, NULL, uris[i]);
    }
}

static void read_only(void)
{
    virConnectPtr ro = virConnectOpenReadOnly("test:///default");
    virNodeDevicePtr dev;
    CHECK(ro != NULL, "read-only open");
    if (ro == NULL)
        return;
    dev = virNodeDeviceLookupByName(ro, "pci_0000_03_01_0");
    CHECK(dev != NULL, "read-only lookup");
    if (dev != NULL) {
        CHECK(virNodeDeviceDetachFlags(dev, "vfio", 0) == -1, "read-only detach");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, NODEDEV, "read-only", "read-only detach");
        CHECK(virNodeDeviceDettach(dev) == -1, "read-only Dettach");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, NODEDEV, NULL, "read-only Dettach");
        CHECK(virNodeDeviceReAttach(dev) == -1, "read-only reattach");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, NODEDEV, NULL, "read-only reattach");
        CHECK(virNodeDeviceReset(dev) == -1, "read-only reset");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, NODEDEV, NULL, "read-only reset");
        CHECK(driver_is(ro, "pci_0000_03_01_0", "e1000"), "read-only connection changed nothing");
        virNodeDeviceFree(dev);
    }
    virConnectClose(ro);
}

int main(void)
{
    virConnectPtr conn;

    CHECK(virGetLastError() == NULL, "no error at start");
    null_connection();
    null_device();

    conn = virConnectOpen("test:///default");
    CHECK(conn != NULL, "open");
    CHECK_NO_ERROR("open resets the last error");
    if (conn != NULL) {
        bad_arguments(conn);
        CHECK(virNodeNumOfDevices(conn, NULL, 0) > 10, "a successful call");
        CHECK_NO_ERROR("a successful call resets the last error");
        virConnectClose(conn);
    }
    bad_uris();
    read_only();
    return check_summary("errors");
}
