/*
 * libvirt conformance: for every exported libvirt function and every bad
 * condition, nodedev answers as libvirt 9.x does: the same return value,
 * error code and domain, in the same order of checks, with the same *out
 * parameters. Compiled ONLY against Debian's libvirt-dev headers
 * (<libvirt/libvirt.h>, <libvirt/virterror.h>) and linked with -lnodedev
 * (tests/conformance.rs). Each EXPECT cites the libvirt source file and
 * function whose code gives the expected answer (read for facts only).
 *
 * Devices of test:///default used: pci_0000_03_01_0 (e1000, no reset
 * method), pci_0000_05_00_0 (edu, no driver), pci_0000_04_10_2 (igbvf),
 * computer, pci_0000_04_00_0 (igb PF with VPD) and its interface eth0
 * (net_eth0_52_54_00_04_00_00), and the tree's 21 PCI functions and 3
 * interfaces of PCI functions.
 * A second simulated host without an IOMMU is written to a temporary file.
 *
 * Prints "libvirt_conformance: N passed, M failed" and the number of
 * conformance checks; exits 0 only when none failed.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed, conformance;

static void report(int ok, int line, const char *what)
{
    if (ok) {
        passed++;
    } else {
        virErrorPtr e = virGetLastError();
        failed++;
        fprintf(stderr, "FAIL line %d: %s [last error code %d domain %d: %s]\n", line, what,
                e ? e->code : 0, e ? e->domain : -1, e && e->message ? e->message : "(none)");
    }
}

/* A plain check of a success path (counted as passed/failed, not as conformance). */
#define CHECK(cond, what) report(!!(cond), __LINE__, what)

/* One conformance check: `failed_call` is true when the call returned its
 * failure value, and the last error has `want_code` and (unless -1) `want_dom`. */
#define EXPECT(failed_call, want_code, want_dom, what)                            \
    do {                                                                          \
        int f_ = !!(failed_call);                                                 \
        virErrorPtr e_ = virGetLastError();                                       \
        conformance++;                                                            \
        report(f_ && e_ != NULL && e_->code == (want_code) &&                     \
                   ((want_dom) == -1 || e_->domain == (want_dom)),                \
               __LINE__, what);                                                   \
    } while (0)

/* One conformance check of a success: `ok` holds and no error is set. */
#define EXPECT_OK(ok, what)                                                       \
    do {                                                                          \
        int o_ = !!(ok);                                                          \
        conformance++;                                                            \
        report(o_ && virGetLastError() == NULL, __LINE__, what);                  \
    } while (0)

/* One conformance check of a state libvirt's code defines (no return value to test). */
#define CONFORM(cond, what)                                                       \
    do {                                                                          \
        conformance++;                                                            \
        report(!!(cond), __LINE__, what);                                         \
    } while (0)

#define NONE VIR_FROM_NONE
#define NODEDEV VIR_FROM_NODEDEV

/* ---- callbacks ---- */

static int auth_calls;
static int count_auth(virConnectCredentialPtr cred, unsigned int ncred, void *cbdata)
{
    (void)cred; (void)ncred; (void)cbdata;
    auth_calls++;
    return 0;
}

static int closed, close_reason = -1, freed;
static virConnectPtr closed_conn;
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    closed++;
    close_reason = reason;
    closed_conn = conn;
    (void)opaque;
}
static void on_close_other(virConnectPtr conn, int reason, void *opaque)
{
    (void)conn; (void)reason; (void)opaque;
}
static void free_opaque(void *opaque)
{
    (*(int *)opaque)++;
    freed++;
}

/* ---- connection calls: src/libvirt.c, src/libvirt-host.c ---- */

static void connection_calls(void)
{
    virConnectPtr conn;
    unsigned long lib = 0, type = 0, v = 0;
    char *s, host[256];
    int opaque = 0;
    virConnectAuth auth = {NULL, 0, count_auth, NULL};

    /* libvirt.c virInitialize: 0 once initialized. */
    EXPECT_OK(virInitialize() == 0, "virInitialize");

    /* libvirt.c virGetVersion: libVer NULL jumps to error without reporting,
     * virDispatchError then sets the generic VIR_ERR_INTERNAL_ERROR. */
    EXPECT(virGetVersion(NULL, NULL, NULL) == -1, VIR_ERR_INTERNAL_ERROR, NONE, "virGetVersion: libVer NULL");
    /* libvirt.c virGetVersion: type is unused, typeVer = libVer. */
    EXPECT_OK(virGetVersion(&lib, "Xen", &type) == 0 && lib > 0 && type == lib, "virGetVersion: type ignored");
    EXPECT_OK(virGetVersion(&lib, NULL, NULL) == 0, "virGetVersion: typeVer NULL");

    /* libvirt.c virConnectOpenInternal: no driver for the URI. */
    EXPECT(virConnectOpen("bogus:///nowhere") == NULL, VIR_ERR_NO_CONNECT, NONE, "virConnectOpen: unknown URI");
    EXPECT(virConnectOpenAuth("bogus:///nowhere", NULL, 0) == NULL, VIR_ERR_NO_CONNECT, NONE,
           "virConnectOpenAuth: unknown URI");
    /* drivers' connectOpen: virCheckFlags(VIR_CONNECT_RO...) -> VIR_ERR_INVALID_ARG
     * (in the driver's domain: not compared). */
    EXPECT(virConnectOpenAuth("test:///default", NULL, 1u << 5) == NULL, VIR_ERR_INVALID_ARG, -1,
           "virConnectOpenAuth: unknown flags");

    /* libvirt.c virConnectOpenAuth: auth NULL is allowed. */
    conn = virConnectOpenAuth("test:///default", NULL, VIR_CONNECT_NO_ALIASES);
    EXPECT_OK(conn != NULL, "virConnectOpenAuth: NULL auth, NO_ALIASES");
    if (conn)
        virConnectClose(conn);
    /* Local drivers never call the auth callback. */
    conn = virConnectOpenAuth("test:///default", &auth, 0);
    EXPECT_OK(conn != NULL && auth_calls == 0, "virConnectOpenAuth: callback not called");
    if (conn)
        virConnectClose(conn);
    conn = virConnectOpenAuth("test:///default", virConnectAuthPtrDefault, VIR_CONNECT_RO);
    EXPECT_OK(conn != NULL, "virConnectOpenAuth: virConnectAuthPtrDefault, read-only");
    CHECK(virConnectAuthPtrDefault != NULL && virConnectAuthPtrDefault->ncredtype > 0 &&
              virConnectAuthPtrDefault->credtype[0] == VIR_CRED_AUTHNAME && virConnectAuthPtrDefault->cb != NULL,
          "virConnectAuthPtrDefault's layout");
    if (conn) {
        virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "pci_0000_05_00_0");
        /* libvirt-nodedev.c virNodeDeviceDetachFlags: virCheckReadOnlyGoto. */
        EXPECT(virNodeDeviceDetachFlags(dev, NULL, 0) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV,
               "virConnectOpenAuth(VIR_CONNECT_RO) is read-only");
        virNodeDeviceFree(dev);
        virConnectClose(conn);
    }

    /* libvirt-host.c / libvirt.c: virCheckConnectReturn, VIR_FROM_NONE. */
    EXPECT(virConnectClose(NULL) == -1, VIR_ERR_INVALID_CONN, NONE, "virConnectClose NULL");
    EXPECT(virConnectRef(NULL) == -1, VIR_ERR_INVALID_CONN, NONE, "virConnectRef NULL");
    EXPECT(virConnectGetURI(NULL) == NULL, VIR_ERR_INVALID_CONN, NONE, "virConnectGetURI NULL");
    EXPECT(virConnectGetType(NULL) == NULL, VIR_ERR_INVALID_CONN, NONE, "virConnectGetType NULL");
    EXPECT(virConnectGetVersion(NULL, &v) == -1, VIR_ERR_INVALID_CONN, NONE, "virConnectGetVersion NULL");
    EXPECT(virConnectGetLibVersion(NULL, &v) == -1, VIR_ERR_INVALID_CONN, NONE, "virConnectGetLibVersion NULL");
    EXPECT(virConnectGetHostname(NULL) == NULL, VIR_ERR_INVALID_CONN, NONE, "virConnectGetHostname NULL");
    EXPECT(virConnectIsAlive(NULL) == -1, VIR_ERR_INVALID_CONN, NONE, "virConnectIsAlive NULL");
    EXPECT(virConnectIsSecure(NULL) == -1, VIR_ERR_INVALID_CONN, NONE, "virConnectIsSecure NULL");
    EXPECT(virConnectIsEncrypted(NULL) == -1, VIR_ERR_INVALID_CONN, NONE, "virConnectIsEncrypted NULL");
    EXPECT(virConnectRegisterCloseCallback(NULL, on_close, NULL, NULL) == -1, VIR_ERR_INVALID_CONN, NONE,
           "virConnectRegisterCloseCallback NULL conn");
    EXPECT(virConnectUnregisterCloseCallback(NULL, on_close) == -1, VIR_ERR_INVALID_CONN, NONE,
           "virConnectUnregisterCloseCallback NULL conn");

    conn = virConnectOpen("test:///default");
    CHECK(conn != NULL, "virConnectOpen test:///default");
    if (conn == NULL)
        return;
    /* libvirt-host.c virConnectGetVersion / GetLibVersion: virCheckNonNullArgGoto. */
    EXPECT(virConnectGetVersion(conn, NULL) == -1, VIR_ERR_INVALID_ARG, NONE, "virConnectGetVersion: hvVer NULL");
    EXPECT(virConnectGetLibVersion(conn, NULL) == -1, VIR_ERR_INVALID_ARG, NONE,
           "virConnectGetLibVersion: libVer NULL");
    /* test_driver.c testConnectGetVersion: 2. */
    EXPECT_OK(virConnectGetVersion(conn, &v) == 0 && v == 2, "virConnectGetVersion on test:///");
    EXPECT_OK(virConnectGetLibVersion(conn, &v) == 0 && v == lib, "virConnectGetLibVersion == virGetVersion");
    s = (char *)virConnectGetType(conn);
    CHECK(s != NULL && strcmp(s, "NODEDEV") == 0, "virConnectGetType NODEDEV");
    /* test_driver.c testConnectGetHostname: virGetHostname(), caller frees. */
    s = virConnectGetHostname(conn);
    CHECK(s != NULL && gethostname(host, sizeof host) == 0 && strcmp(s, host) == 0, "virConnectGetHostname");
    free(s);
    /* A local connection: alive, secure, not encrypted (test_driver.c,
     * node_device_driver.c nodeConnectIsSecure/IsEncrypted/IsAlive). */
    EXPECT_OK(virConnectIsAlive(conn) == 1, "virConnectIsAlive");
    EXPECT_OK(virConnectIsSecure(conn) == 1, "virConnectIsSecure");
    EXPECT_OK(virConnectIsEncrypted(conn) == 0, "virConnectIsEncrypted");

    /* libvirt-host.c virConnectRegisterCloseCallback: virCheckNonNullArgGoto(cb). */
    EXPECT(virConnectRegisterCloseCallback(conn, NULL, NULL, NULL) == -1, VIR_ERR_INVALID_ARG, NONE,
           "virConnectRegisterCloseCallback: cb NULL");
    EXPECT(virConnectUnregisterCloseCallback(conn, NULL) == -1, VIR_ERR_INVALID_ARG, NONE,
           "virConnectUnregisterCloseCallback: cb NULL");
    /* remote_driver.c remoteConnectUnregisterCloseCallback: not the registered one. */
    EXPECT(virConnectUnregisterCloseCallback(conn, on_close) == -1, VIR_ERR_OPERATION_INVALID, VIR_FROM_REMOTE,
           "virConnectUnregisterCloseCallback: none registered");
    EXPECT_OK(virConnectRegisterCloseCallback(conn, on_close, &opaque, free_opaque) == 0,
              "virConnectRegisterCloseCallback");
    /* remote_driver.c remoteConnectRegisterCloseCallback: one at a time. */
    EXPECT(virConnectRegisterCloseCallback(conn, on_close_other, NULL, NULL) == -1, VIR_ERR_OPERATION_INVALID,
           VIR_FROM_REMOTE, "virConnectRegisterCloseCallback: already registered");
    EXPECT(virConnectUnregisterCloseCallback(conn, on_close_other) == -1, VIR_ERR_OPERATION_INVALID,
           VIR_FROM_REMOTE, "virConnectUnregisterCloseCallback: a different callback");
    EXPECT_OK(virConnectUnregisterCloseCallback(conn, on_close) == 0 && opaque == 1 && closed == 0,
              "virConnectUnregisterCloseCallback frees opaque, no call");
    EXPECT_OK(virConnectRegisterCloseCallback(conn, on_close, &opaque, free_opaque) == 0,
              "virConnectRegisterCloseCallback again");
    {
        /* A device handle holds the connection: closing fires only with the last reference. */
        virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "pci_0000_05_00_0");
        CHECK(virConnectClose(conn) > 0 && closed == 0, "close with a device outstanding: not yet closed");
        CHECK(virNodeDeviceFree(dev) == 0, "free the last device");
    }
    CHECK(closed == 1 && close_reason == VIR_CONNECT_CLOSE_REASON_CLIENT && closed_conn == conn && opaque == 2,
          "close callback fired once with VIR_CONNECT_CLOSE_REASON_CLIENT, then freecb");
}

/* ---- node devices: src/libvirt-nodedev.c, src/node_device/node_device_driver.c ---- */

static void listing_calls(virConnectPtr conn)
{
    static virNodeDevicePtr sentinel[1];
    virNodeDevicePtr *devs = sentinel;
    char *names[4] = {NULL, NULL, NULL, NULL};
    int n;

    /* libvirt-nodedev.c: virCheckConnectReturn, domain VIR_FROM_NODEDEV. */
    EXPECT(virNodeNumOfDevices(NULL, NULL, 0) == -1, VIR_ERR_INVALID_CONN, NODEDEV, "virNodeNumOfDevices NULL");
    /* node_device_driver.c nodeNumOfDevices: virCheckFlags(0). */
    EXPECT(virNodeNumOfDevices(conn, NULL, 1) == -1, VIR_ERR_INVALID_ARG, NODEDEV, "virNodeNumOfDevices flags");
    /* An unknown capability matches no device: 0, no error. */
    EXPECT_OK(virNodeNumOfDevices(conn, "no-such-cap", 0) == 0, "virNodeNumOfDevices unknown cap");

    /* libvirt-nodedev.c virConnectListAllNodeDevices: *devices = NULL before
     * the connection check. */
    EXPECT(virConnectListAllNodeDevices(NULL, &devs, 0) == -1 && devs == NULL, VIR_ERR_INVALID_CONN, NODEDEV,
           "virConnectListAllNodeDevices NULL conn, *devices NULL");
    devs = sentinel;
    /* node_device_driver.c nodeConnectListAllNodeDevices: virCheckFlags(FILTERS_ALL). */
    EXPECT(virConnectListAllNodeDevices(conn, &devs, 1u << 25) == -1 && devs == NULL, VIR_ERR_INVALID_ARG,
           NODEDEV, "virConnectListAllNodeDevices unknown flag, *devices NULL");
    n = virConnectListAllNodeDevices(conn, NULL, 0);
    EXPECT_OK(n > 0, "virConnectListAllNodeDevices devices NULL counts");
    EXPECT_OK(virConnectListAllNodeDevices(conn, NULL, VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE) == 0,
              "virConnectListAllNodeDevices INACTIVE: none");

    /* libvirt-nodedev.c virNodeListDevices: conn, names, maxnames, then the driver's flags. */
    EXPECT(virNodeListDevices(NULL, NULL, NULL, -1, 1) == -1, VIR_ERR_INVALID_CONN, NODEDEV,
           "virNodeListDevices: conn checked first");
    EXPECT(virNodeListDevices(conn, NULL, NULL, -1, 1) == -1, VIR_ERR_INVALID_ARG, NODEDEV,
           "virNodeListDevices: names NULL");
    CHECK(strstr(virGetLastErrorMessage(), "names") != NULL, "names checked before maxnames");
    EXPECT(virNodeListDevices(conn, NULL, names, -1, 1) == -1, VIR_ERR_INVALID_ARG, NODEDEV,
           "virNodeListDevices: maxnames negative");
    CHECK(strstr(virGetLastErrorMessage(), "maxnames") != NULL, "maxnames checked before flags");
    EXPECT(virNodeListDevices(conn, NULL, names, 4, 1) == -1 && names[0] == NULL, VIR_ERR_INVALID_ARG, NODEDEV,
           "virNodeListDevices: flags");
    /* node_device_driver.c nodeListDevices: fills at most maxnames. */
    EXPECT_OK(virNodeListDevices(conn, NULL, names, 0, 0) == 0 && names[0] == NULL, "virNodeListDevices maxnames 0");
    EXPECT_OK(virNodeListDevices(conn, "no-such-cap", names, 4, 0) == 0, "virNodeListDevices unknown cap");
}

static void lookup_calls(virConnectPtr conn)
{
    /* node_device_driver.c nodeDeviceLookupByName: any name not found is
     * VIR_ERR_NO_NODE_DEVICE, whatever its shape. */
    static const char *const unknown[] = {
        "computer_", "net_eth0_00_11_22_33_44_55", "pci_9999_99_99_9", "", "pci_0000_0f_00_0",
        "0000:03:01.8", "../../etc/passwd", "\xff\xfe",
    };
    size_t i;

    EXPECT(virNodeDeviceLookupByName(NULL, "pci_0000_05_00_0") == NULL, VIR_ERR_INVALID_CONN, NODEDEV,
           "virNodeDeviceLookupByName NULL conn");
    /* libvirt-nodedev.c virNodeDeviceLookupByName: virCheckNonNullArgGoto(name). */
    EXPECT(virNodeDeviceLookupByName(conn, NULL) == NULL, VIR_ERR_INVALID_ARG, NODEDEV,
           "virNodeDeviceLookupByName NULL name");
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "virNodeDeviceLookupByName '%s'", unknown[i]);
        EXPECT(virNodeDeviceLookupByName(conn, unknown[i]) == NULL, VIR_ERR_NO_NODE_DEVICE, NODEDEV, what);
    }
}

static void device_handle_calls(virConnectPtr conn)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "pci_0000_05_00_0");
    char *names[2] = {NULL, NULL};

    CHECK(dev != NULL, "lookup pci_0000_05_00_0");
    if (dev == NULL)
        return;
    /* libvirt-nodedev.c: virCheckNodeDeviceReturn -> VIR_ERR_INVALID_NODE_DEVICE. */
    EXPECT(virNodeDeviceGetXMLDesc(NULL, 0) == NULL, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "GetXMLDesc NULL");
    EXPECT(virNodeDeviceGetName(NULL) == NULL, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "GetName NULL");
    EXPECT(virNodeDeviceGetParent(NULL) == NULL, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "GetParent NULL");
    EXPECT(virNodeDeviceNumOfCaps(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "NumOfCaps NULL");
    EXPECT(virNodeDeviceListCaps(NULL, names, 2) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "ListCaps NULL");
    EXPECT(virNodeDeviceRef(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "Ref NULL");
    EXPECT(virNodeDeviceFree(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "Free NULL");
    EXPECT(virNodeDeviceDettach(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "Dettach NULL");
    EXPECT(virNodeDeviceDetachFlags(NULL, NULL, 0) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV,
           "DetachFlags NULL");
    EXPECT(virNodeDeviceReAttach(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "ReAttach NULL");
    EXPECT(virNodeDeviceReset(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "Reset NULL");
    EXPECT(virNodeDeviceSetAutostart(NULL, 1) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "SetAutostart NULL");
    {
        int autostart = 7;
        EXPECT(virNodeDeviceGetAutostart(NULL, &autostart) == -1 && autostart == 7, VIR_ERR_INVALID_NODE_DEVICE,
               NODEDEV, "GetAutostart NULL");
    }
    /* libvirt-nodedev.c virNodeDeviceGetAutostart does not check autostart
     * and node_device_driver.c nodeDeviceGetAutostart stores through it (a
     * crash): nodedev's documented difference is VIR_ERR_INVALID_ARG. */
    CHECK(virNodeDeviceGetAutostart(dev, NULL) == -1 && virGetLastErrorCode() == VIR_ERR_INVALID_ARG,
          "GetAutostart NULL out: refused, not a crash");
    /* node_device_driver.c nodeDeviceGetXMLDesc: virCheckFlags (9.0: none). */
    EXPECT(virNodeDeviceGetXMLDesc(dev, 1) == NULL, VIR_ERR_INVALID_ARG, NODEDEV, "GetXMLDesc flags");
    /* libvirt-nodedev.c virNodeDeviceListCaps: names, then maxnames. */
    EXPECT(virNodeDeviceListCaps(dev, NULL, -1) == -1, VIR_ERR_INVALID_ARG, NODEDEV, "ListCaps names NULL");
    EXPECT(virNodeDeviceListCaps(dev, names, -1) == -1, VIR_ERR_INVALID_ARG, NODEDEV, "ListCaps maxnames < 0");
    EXPECT_OK(virNodeDeviceListCaps(dev, names, 0) == 0 && names[0] == NULL, "ListCaps maxnames 0");
    EXPECT_OK(virNodeDeviceNumOfCaps(dev) >= 1, "NumOfCaps");
    virNodeDeviceFree(dev);
}

static void changing_calls(virConnectPtr conn, virConnectPtr ro)
{
    virNodeDevicePtr rdev = virNodeDeviceLookupByName(ro, "pci_0000_05_00_0");
    virNodeDevicePtr edu = virNodeDeviceLookupByName(conn, "pci_0000_05_00_0");
    virNodeDevicePtr nic = virNodeDeviceLookupByName(conn, "pci_0000_03_01_0");

    CHECK(rdev && edu && nic, "lookups");
    if (!rdev || !edu || !nic)
        return;
    /* libvirt-nodedev.c: virCheckReadOnlyGoto right after the handle check,
     * before flags and driverName -> VIR_ERR_OPERATION_DENIED. */
    EXPECT(virNodeDeviceDettach(rdev) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV, "read-only Dettach");
    EXPECT(virNodeDeviceDetachFlags(rdev, "bogus", 1u << 3) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV,
           "read-only DetachFlags before flags and driverName");
    EXPECT(virNodeDeviceReAttach(rdev) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV, "read-only ReAttach");
    EXPECT(virNodeDeviceReset(rdev) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV, "read-only Reset");
    /* libvirt-nodedev.c virNodeDeviceSetAutostart: virCheckReadOnlyGoto. */
    EXPECT(virNodeDeviceSetAutostart(rdev, 1) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV, "read-only SetAutostart");

    /* qemu_driver.c qemuNodeDeviceDetachFlags: virCheckFlags(0) before the
     * driver name -> VIR_ERR_INVALID_ARG about flags. */
    EXPECT(virNodeDeviceDetachFlags(edu, "bogus", 1u << 3) == -1, VIR_ERR_INVALID_ARG, NODEDEV,
           "DetachFlags unknown flag");
    CHECK(strstr(virGetLastErrorMessage(), "flags") != NULL, "flags checked before driverName");
    /* qemu_driver.c qemuNodeDeviceDetachFlags: unknown driver name. */
    EXPECT(virNodeDeviceDetachFlags(edu, "bogus", 0) == -1, VIR_ERR_INVALID_ARG, NODEDEV,
           "DetachFlags unknown driverName");
    /* virpci.c virPCIDeviceUnbindFromStub: a device not on a stub is left as it is. */
    EXPECT_OK(virNodeDeviceReAttach(nic) == 0, "ReAttach of a device on its host driver: 0");
    /* virpci.c virPCIDeviceBindToStub: already bound to the stub -> 0. */
    EXPECT_OK(virNodeDeviceDetachFlags(edu, "vfio", 0) == 0, "DetachFlags vfio");
    EXPECT_OK(virNodeDeviceDetachFlags(edu, "vfio", 0) == 0, "DetachFlags again: already on the stub");
    EXPECT_OK(virNodeDeviceReset(edu) == 0, "Reset on vfio-pci");
    EXPECT_OK(virNodeDeviceReAttach(edu) == 0, "ReAttach");
    /* virpci.c virPCIDeviceReset: no FLR, PM or bus reset -> VIR_ERR_INTERNAL_ERROR. */
    if (virNodeDeviceDetachFlags(nic, "kvm", 0) == 0) {
        EXPECT(virNodeDeviceReset(nic) == -1, VIR_ERR_INTERNAL_ERROR, NODEDEV, "Reset without a method");
        CHECK(virNodeDeviceReAttach(nic) == 0, "NIC back");
    } else {
        CHECK(0, "detach the NIC to pci-stub");
    }
    virNodeDeviceFree(rdev);
    virNodeDeviceFree(edu);
    virNodeDeviceFree(nic);
}

/* ---- libvirt's device tree: computer, net devices, capability filters ---- */

/* The number of devices a capability filter lists, each name having `prefix`. */
static int listed(virConnectPtr conn, unsigned int flags, const char *prefix)
{
    virNodeDevicePtr *devs = NULL;
    int n = virConnectListAllNodeDevices(conn, &devs, flags);
    int i, all = 1;

    for (i = 0; i < n; i++) {
        all &= strncmp(virNodeDeviceGetName(devs[i]), prefix, strlen(prefix)) == 0;
        virNodeDeviceFree(devs[i]);
    }
    free(devs);
    return n >= 0 && all ? n : -1;
}

/* A device's capability names joined by ','. */
static void caps_of(virNodeDevicePtr dev, char *out, size_t size)
{
    char *names[8] = {NULL};
    int n = virNodeDeviceListCaps(dev, names, 8), i;

    out[0] = 0;
    for (i = 0; i < n; i++) {
        if (i)
            strncat(out, ",", size - strlen(out) - 1);
        strncat(out, names[i], size - strlen(out) - 1);
        free(names[i]);
    }
}

static void tree_calls(virConnectPtr conn)
{
    virNodeDevicePtr computer = virNodeDeviceLookupByName(conn, "computer");
    virNodeDevicePtr net = virNodeDeviceLookupByName(conn, "net_eth0_52_54_00_04_00_00");
    virNodeDevicePtr pf = virNodeDeviceLookupByName(conn, "pci_0000_04_00_0");
    char caps[64], *xml, *names[4] = {NULL};
    int n;

    /* node_device_udev.c udevSetupSystemDev: the root device "computer". */
    EXPECT_OK(computer != NULL, "LookupByName computer");
    /* node_device_udev.c udevProcessNetworkInterface + nodeDeviceGenerateName:
     * net_IFNAME_MAC, non-alphanumerics as '_'. */
    EXPECT_OK(net != NULL, "LookupByName net_eth0_52_54_00_04_00_00");
    CHECK(pf != NULL, "lookup pci_0000_04_00_0");
    if (!computer || !net || !pf)
        return;
    /* node_device_driver.c nodeDeviceGetParent: no parent -> VIR_ERR_INTERNAL_ERROR. */
    EXPECT(virNodeDeviceGetParent(computer) == NULL, VIR_ERR_INTERNAL_ERROR, NODEDEV, "GetParent computer");
    /* node_device_udev.c udevSetParent: the closest known ancestor. */
    EXPECT_OK(strcmp(virNodeDeviceGetParent(net) ?: "", "pci_0000_04_00_0") == 0, "GetParent of eth0: its PF");
    xml = virNodeDeviceGetXMLDesc(computer, 0);
    /* node_device_conf.c virNodeDeviceCapSystemDefFormat: hardware, uuid, firmware. */
    EXPECT_OK(xml && strstr(xml, "<capability type='system'>") && strstr(xml, "<vendor>QEMU</vendor>") &&
                  strstr(xml, "<uuid>6e6f6465-6465-4076-8000-000000000042</uuid>") &&
                  strstr(xml, "<release_date>04/01/2014</release_date>") && !strstr(xml, "<parent>"),
              "computer XML: DMI hardware and firmware, no parent");
    free(xml);
    xml = virNodeDeviceGetXMLDesc(net, 0);
    /* node_device_conf.c virNodeDeviceCapNetDefFormat, virInterfaceLinkFormat. */
    EXPECT_OK(xml && strstr(xml, "<interface>eth0</interface>") && strstr(xml, "<address>52:54:00:04:00:00</address>") &&
                  strstr(xml, "<link speed='1000' state='up'/>") && strstr(xml, "<feature name='rxhash'/>") &&
                  strstr(xml, "<capability type='80203'/>") && strstr(xml, "<parent>pci_0000_04_00_0</parent>"),
              "net XML: interface, address, link, features, 80203");
    free(xml);
    xml = virNodeDeviceGetXMLDesc(pf, 0);
    /* node_device_conf.c virNodeDeviceCapVPDFormat, virPCIEDeviceInfoFormat. */
    EXPECT_OK(xml && strstr(xml, "<serial_number>A0B1C2D3E4F5</serial_number>") &&
                  strstr(xml, "<asset_tag>rack-7 slot-2</asset_tag>") &&
                  strstr(xml, "<link validity='cap' port='0' speed='2.5' width='4'/>"),
              "PF XML: VPD fields and PCIe link");
    free(xml);
    xml = virNodeDeviceGetXMLDesc(virNodeDeviceLookupByName(conn, "pci_0000_00_1d_0"), 0);
    /* node_device_conf.c virNodeDeviceCapPCIDefFormat: hdrType as a capability. */
    CHECK(xml && strstr(xml, "<capability type='pci-bridge'/>"), "root port XML: pci-bridge");
    free(xml);

    /* node_device_conf.c virNodeDeviceCapsListExport: the PCI capability
     * then vpd when the function has VPD. */
    caps_of(computer, caps, sizeof caps);
    EXPECT_OK(strcmp(caps, "system") == 0 && virNodeDeviceNumOfCaps(computer) == 1, "computer caps: system");
    caps_of(net, caps, sizeof caps);
    EXPECT_OK(strcmp(caps, "net") == 0 && virNodeDeviceNumOfCaps(net) == 1, "net caps: net");
    caps_of(pf, caps, sizeof caps);
    EXPECT_OK(strcmp(caps, "pci,vpd") == 0 && virNodeDeviceNumOfCaps(pf) == 2, "PF caps: pci,vpd");

    /* virnodedeviceobj.c virNodeDeviceObjMatch / virNodeDeviceObjHasCap: a
     * capability bit selects the devices having it (VPD through the PCI
     * capability's flag). */
    EXPECT_OK(listed(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM, "computer") == 1, "CAP_SYSTEM: computer");
    EXPECT_OK(listed(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV, "pci_") == 21, "CAP_PCI_DEV: 21 functions");
    EXPECT_OK(listed(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET, "net_") == 3, "CAP_NET: 3 interfaces");
    EXPECT_OK(listed(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPD, "pci_0000_04_00_0") == 1, "CAP_VPD: the PF");
    EXPECT_OK(listed(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET | VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM, "") == 4,
              "CAP_NET|CAP_SYSTEM: either");
    EXPECT_OK(listed(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV | VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPD, "pci_") ==
                  21,
              "CAP_PCI_DEV|CAP_VPD: each device once");
    EXPECT_OK(listed(conn, 0, "") == 25, "no filter: computer, 21 functions, 3 interfaces");
    {
        static const unsigned int none[] = {
            VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_DEV,      VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_INTERFACE,
            VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_HOST,    VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_TARGET,
            VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI,         VIR_CONNECT_LIST_NODE_DEVICES_CAP_STORAGE,
            VIR_CONNECT_LIST_NODE_DEVICES_CAP_FC_HOST,      VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPORTS,
            VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_GENERIC, VIR_CONNECT_LIST_NODE_DEVICES_CAP_DRM,
            VIR_CONNECT_LIST_NODE_DEVICES_CAP_CCW_DEV,      VIR_CONNECT_LIST_NODE_DEVICES_CAP_CSS_DEV,
            VIR_CONNECT_LIST_NODE_DEVICES_CAP_VDPA,         VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_CARD,
            VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_QUEUE,     VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_MATRIX,
        };
        size_t i;
        for (i = 0; i < sizeof none / sizeof none[0]; i++) {
            char what[64];
            snprintf(what, sizeof what, "capability bit 0x%x: no device has it here", none[i]);
            EXPECT_OK(listed(conn, none[i], "") == 0, what);
        }
    }
    /* virnodedeviceobj.c virNodeDeviceObjListNumOfDevices: virNodeDeviceObjHasCapStr. */
    EXPECT_OK(virNodeNumOfDevices(conn, "system", 0) == 1 && virNodeNumOfDevices(conn, "net", 0) == 3 &&
                  virNodeNumOfDevices(conn, "vpd", 0) == 1 && virNodeNumOfDevices(conn, "pci", 0) == 21,
              "virNodeNumOfDevices by capability");
    n = virNodeListDevices(conn, "system", names, 4, 0);
    EXPECT_OK(n == 1 && strcmp(names[0], "computer") == 0, "virNodeListDevices system: computer");
    if (n > 0)
        free(names[0]);
    /* domain_driver.c virDomainDriverNodeDeviceGetPCIInfo: not a PCI device -> VIR_ERR_INVALID_ARG. */
    EXPECT(virNodeDeviceDetachFlags(net, NULL, 0) == -1, VIR_ERR_INVALID_ARG, NODEDEV, "DetachFlags of an interface");
    EXPECT(virNodeDeviceDettach(computer) == -1, VIR_ERR_INVALID_ARG, NODEDEV, "Dettach of computer");
    virNodeDeviceFree(computer);
    virNodeDeviceFree(net);
    virNodeDeviceFree(pf);
}

/* ---- the error family: src/util/virerror.c ---- */

static void error_family(virConnectPtr conn)
{
    virError copy;
    virErrorPtr cerr;
    char *uri;

    /* virerror.c virConnGetLastError: NULL connection -> NULL. */
    CONFORM(virConnGetLastError(NULL) == NULL, "virConnGetLastError(NULL)");
    /* virerror.c virConnCopyLastError: NULL connection -> -1. */
    CONFORM(virConnCopyLastError(NULL, &copy) == -1, "virConnCopyLastError(NULL)");
    /* virerror.c virDispatchError: the error is copied to the connection. */
    EXPECT(virNodeDeviceLookupByName(conn, "no-such-device") == NULL, VIR_ERR_NO_NODE_DEVICE, NODEDEV,
           "an error on the connection");
    cerr = virConnGetLastError(conn);
    CONFORM(cerr != NULL && cerr->code == VIR_ERR_NO_NODE_DEVICE && cerr->domain == NODEDEV,
          "virConnGetLastError: the connection's copy");
    /* Public entry points reset only the thread's error (virResetLastError). */
    uri = virConnectGetURI(conn);
    EXPECT_OK(uri != NULL, "a successful call clears the thread's error");
    free(uri);
    CONFORM(virConnGetLastError(conn) == cerr && cerr->code == VIR_ERR_NO_NODE_DEVICE,
          "the connection's error survives a successful call");
    CONFORM(virConnCopyLastError(conn, &copy) == VIR_ERR_NO_NODE_DEVICE && copy.code == VIR_ERR_NO_NODE_DEVICE,
          "virConnCopyLastError");
    virResetError(&copy);
    /* virerror.c virConnResetLastError: empties conn->err. */
    virConnResetLastError(conn);
    CONFORM(cerr->code == VIR_ERR_OK && virConnCopyLastError(conn, &copy) == 0, "virConnResetLastError");
    /* virerror.c virGetLastErrorMessage: "no error" when none. */
    CONFORM(virGetLastError() == NULL && virGetLastErrorCode() == VIR_ERR_OK &&
              strcmp(virGetLastErrorMessage(), "no error") == 0,
          "no last error: code 0, \"no error\"");
}


/* ==== fidelity (issue 12 item 1): the calls audited against libvirt 9.x's
 * sources in this block; each check cites the function whose code gives
 * the answer. ==== */

#define XMLDOM VIR_FROM_XML
#define MDEV_PARENT "pci_0000_00_02_0"
#define MDEV_TYPE "i915-GVTg_V5_4"
#define MDEV_UUID "0b7ca1f4-6d10-4c1a-9a43-5e1d2b3c4d5e"
#define MDEV_NAME "mdev_0b7ca1f4_6d10_4c1a_9a43_5e1d2b3c4d5e_0000_00_02_0"

static virNodeDevicePtr create_xml(virConnectPtr conn, const char *parent, const char *cap)
{
    char xml[1024];
    snprintf(xml, sizeof xml, "<device>%s%s%s<capability type='mdev'>%s</capability></device>",
             parent ? "<parent>" : "", parent ? parent : "", parent ? "</parent>" : "", cap);
    return virNodeDeviceCreateXML(conn, xml, 0);
}

static void mdev_calls(virConnectPtr conn, virConnectPtr ro)
{
    virNodeDevicePtr mdev, rmdev, computer, net, pci;
    int autostart;

    /* libvirt-nodedev.c virNodeDeviceCreateXML / DefineXML: connection,
     * read-only, xmlDesc, then node_device_driver.c: virCheckFlags before
     * the document is parsed. */
    EXPECT(virNodeDeviceCreateXML(NULL, NULL, 1u << 4) == NULL, VIR_ERR_INVALID_CONN, NODEDEV, "CreateXML NULL conn");
    EXPECT(virNodeDeviceDefineXML(NULL, NULL, 1u << 4) == NULL, VIR_ERR_INVALID_CONN, NODEDEV, "DefineXML NULL conn");
    EXPECT(virNodeDeviceCreateXML(ro, NULL, 1u << 4) == NULL, VIR_ERR_OPERATION_DENIED, NODEDEV,
           "CreateXML read-only before xmlDesc and flags");
    EXPECT(virNodeDeviceDefineXML(ro, NULL, 1u << 4) == NULL, VIR_ERR_OPERATION_DENIED, NODEDEV,
           "DefineXML read-only before xmlDesc and flags");
    EXPECT(virNodeDeviceCreateXML(conn, NULL, 1u << 4) == NULL, VIR_ERR_INVALID_ARG, NODEDEV,
           "CreateXML xmlDesc NULL before flags");
    EXPECT(virNodeDeviceCreateXML(conn, "<dev", 1u << 4) == NULL && strstr(virGetLastErrorMessage(), "flags"),
           VIR_ERR_INVALID_ARG, NODEDEV, "CreateXML flags before the document");
    EXPECT(virNodeDeviceDefineXML(conn, "<dev", 1u << 4) == NULL && strstr(virGetLastErrorMessage(), "flags"),
           VIR_ERR_INVALID_ARG, NODEDEV, "DefineXML flags before the document");

    /* virxml.c virXMLParseHelper (domain of the caller, node_device_conf.c):
     * not well-formed -> VIR_ERR_XML_DETAIL; another root -> VIR_ERR_XML_ERROR
     * raised in virxml.c (VIR_FROM_XML). */
    EXPECT(virNodeDeviceCreateXML(conn, "<device>", 0) == NULL, VIR_ERR_XML_DETAIL, NODEDEV, "CreateXML not well-formed");
    EXPECT(virNodeDeviceCreateXML(conn, "<domain/>", 0) == NULL, VIR_ERR_XML_ERROR, XMLDOM, "CreateXML root not device");
    /* node_device_conf.c virNodeDevCapMdevParseXML: no type id and an
     * incomplete attribute are CONFIG_UNSUPPORTED, a bad UUID INTERNAL_ERROR;
     * all before the parent is validated. */
    EXPECT(create_xml(conn, NULL, "") == NULL && !strstr(virGetLastErrorMessage(), "parent"),
           VIR_ERR_CONFIG_UNSUPPORTED, NODEDEV, "CreateXML no type id (before the missing parent)");
    EXPECT(create_xml(conn, MDEV_PARENT, "<type id='" MDEV_TYPE "'/><attr name='x'/>") == NULL,
           VIR_ERR_CONFIG_UNSUPPORTED, NODEDEV, "CreateXML attr without value");
    EXPECT(create_xml(conn, "pci_0000_99_00_0", "<type id='" MDEV_TYPE "'/><uuid>not-a-uuid</uuid>") == NULL,
           VIR_ERR_INTERNAL_ERROR, NODEDEV, "CreateXML bad uuid (before the parent)");
    /* node_device_driver.c nodeDeviceDefValidateMdev: no parent, no such
     * parent -> CONFIG_UNSUPPORTED; a parent without an address -> PARSE_FAILED. */
    EXPECT(create_xml(conn, NULL, "<type id='" MDEV_TYPE "'/>") == NULL, VIR_ERR_CONFIG_UNSUPPORTED, NODEDEV,
           "CreateXML no parent");
    EXPECT(create_xml(conn, "pci_0000_99_00_0", "<type id='" MDEV_TYPE "'/>") == NULL, VIR_ERR_CONFIG_UNSUPPORTED,
           NODEDEV, "CreateXML parent is no device");
    EXPECT(create_xml(conn, "no_such_parent", "<type id='" MDEV_TYPE "'/>") == NULL, VIR_ERR_CONFIG_UNSUPPORTED,
           NODEDEV, "CreateXML parent name of no shape");
    EXPECT(create_xml(conn, "computer", "<type id='" MDEV_TYPE "'/>") == NULL, VIR_ERR_PARSE_FAILED, NODEDEV,
           "CreateXML parent without an address");
    EXPECT(virNodeDeviceDefineXML(conn, "<device><parent>computer</parent><capability type='mdev'><type id='"
                                        MDEV_TYPE "'/></capability></device>", 0) == NULL,
           VIR_ERR_PARSE_FAILED, NODEDEV, "DefineXML parent without an address");
    /* node_device_driver.c nodeDeviceCreateXML: not an mdev (nor a vHBA). */
    EXPECT(virNodeDeviceCreateXML(conn, "<device><parent>computer</parent><capability type='pci'/></device>", 0) ==
               NULL,
           VIR_ERR_CONFIG_UNSUPPORTED, NODEDEV, "CreateXML of a PCI device");
    /* node_device_driver.c virMdevctlCreate: mdevctl failing -> INTERNAL_ERROR. */
    EXPECT(create_xml(conn, MDEV_PARENT, "<type id='no-such-type'/>") == NULL, VIR_ERR_INTERNAL_ERROR, NODEDEV,
           "CreateXML type the parent does not offer");
    EXPECT(create_xml(conn, "pci_0000_05_00_0", "<type id='" MDEV_TYPE "'/>") == NULL, VIR_ERR_INTERNAL_ERROR,
           NODEDEV, "CreateXML parent without mdev types");

    mdev = create_xml(conn, MDEV_PARENT, "<type id='" MDEV_TYPE "'/><uuid>" MDEV_UUID "</uuid>");
    /* node_device_driver.c mdevGenerateDeviceName: mdev_UUID_PARENTADDR. */
    EXPECT_OK(mdev != NULL && strcmp(virNodeDeviceGetName(mdev), MDEV_NAME) == 0, "CreateXML an mdev");
    if (mdev == NULL)
        return;
    EXPECT(create_xml(conn, MDEV_PARENT, "<type id='" MDEV_TYPE "'/><uuid>" MDEV_UUID "</uuid>") == NULL,
           VIR_ERR_INTERNAL_ERROR, NODEDEV, "CreateXML a UUID that is live (mdevctl fails)");
    rmdev = virNodeDeviceLookupByName(ro, MDEV_NAME);
    CHECK(rmdev != NULL, "lookup the mdev read-only");
    /* libvirt-nodedev.c: read-only right after the handle, before flags. */
    EXPECT(virNodeDeviceCreate(rmdev, 1) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV, "Create read-only before flags");
    EXPECT(virNodeDeviceUndefine(rmdev, 1) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV,
           "Undefine read-only before flags");
    EXPECT(virNodeDeviceDestroy(rmdev) == -1, VIR_ERR_OPERATION_DENIED, NODEDEV, "Destroy read-only");
    virNodeDeviceFree(rmdev);
    /* node_device_driver.c nodeDeviceCreate: flags, then already active. */
    EXPECT(virNodeDeviceCreate(mdev, 1) == -1, VIR_ERR_INVALID_ARG, NODEDEV, "Create flags before state");
    EXPECT(virNodeDeviceCreate(mdev, 0) == -1, VIR_ERR_OPERATION_INVALID, NODEDEV, "Create a live mdev");
    /* node_device_driver.c nodeDeviceUndefine: flags, then not defined. */
    EXPECT(virNodeDeviceUndefine(mdev, 1) == -1, VIR_ERR_INVALID_ARG, NODEDEV, "Undefine flags before state");
    EXPECT(virNodeDeviceUndefine(mdev, 0) == -1, VIR_ERR_OPERATION_INVALID, NODEDEV, "Undefine a transient mdev");
    /* node_device_driver.c nodeDeviceSetAutostart: transient -> OPERATION_INVALID. */
    EXPECT(virNodeDeviceSetAutostart(mdev, 1) == -1, VIR_ERR_OPERATION_INVALID, NODEDEV,
           "SetAutostart a transient mdev");
    autostart = 7;
    EXPECT_OK(virNodeDeviceGetAutostart(mdev, &autostart) == 0 && autostart == 0, "GetAutostart a transient mdev: 0");
    EXPECT_OK(virNodeDeviceIsActive(mdev) == 1 && virNodeDeviceIsPersistent(mdev) == 0,
              "IsActive/IsPersistent a transient mdev: 1, 0");
    EXPECT_OK(virNodeDeviceDestroy(mdev) == 0, "Destroy the mdev");
    /* node_device_driver.c nodeDeviceObjFindByName: gone -> NO_NODE_DEVICE. */
    EXPECT(virNodeDeviceDestroy(mdev) == -1, VIR_ERR_NO_NODE_DEVICE, NODEDEV, "Destroy a gone mdev");
    EXPECT(virNodeDeviceIsActive(mdev) == -1, VIR_ERR_NO_NODE_DEVICE, NODEDEV, "IsActive a gone mdev");
    EXPECT(virNodeDeviceGetAutostart(mdev, &autostart) == -1, VIR_ERR_NO_NODE_DEVICE, NODEDEV,
           "GetAutostart a gone mdev");
    virNodeDeviceFree(mdev);

    /* Devices that are no mdev (node_device_driver.c). */
    computer = virNodeDeviceLookupByName(conn, "computer");
    net = virNodeDeviceLookupByName(conn, "net_eth0_52_54_00_04_00_00");
    pci = virNodeDeviceLookupByName(conn, "pci_0000_05_00_0");
    CHECK(computer && net && pci, "lookups");
    if (!computer || !net || !pci)
        return;
    /* nodeDeviceDestroy: Unsupported device type. */
    EXPECT(virNodeDeviceDestroy(computer) == -1, VIR_ERR_CONFIG_UNSUPPORTED, NODEDEV, "Destroy computer");
    EXPECT(virNodeDeviceDestroy(net) == -1, VIR_ERR_CONFIG_UNSUPPORTED, NODEDEV, "Destroy an interface");
    /* nodeDeviceCreate: every device but a defined mdev is active. */
    EXPECT(virNodeDeviceCreate(computer, 0) == -1, VIR_ERR_OPERATION_INVALID, NODEDEV, "Create computer");
    EXPECT(virNodeDeviceCreate(pci, 0) == -1, VIR_ERR_OPERATION_INVALID, NODEDEV, "Create a PCI device");
    /* nodeDeviceUndefine: not persistent -> OPERATION_INVALID before the type. */
    EXPECT(virNodeDeviceUndefine(computer, 0) == -1, VIR_ERR_OPERATION_INVALID, NODEDEV, "Undefine computer");
    EXPECT(virNodeDeviceUndefine(pci, 0) == -1, VIR_ERR_OPERATION_INVALID, NODEDEV,
           "Undefine a PCI device without a definition");
    /* nodeDeviceSetAutostart: not an mdev -> OPERATION_UNSUPPORTED. */
    EXPECT(virNodeDeviceSetAutostart(computer, 1) == -1, VIR_ERR_OPERATION_UNSUPPORTED, NODEDEV,
           "SetAutostart computer");
    EXPECT(virNodeDeviceSetAutostart(net, 0) == -1, VIR_ERR_OPERATION_UNSUPPORTED, NODEDEV,
           "SetAutostart an interface");
    /* nodeDeviceGetAutostart: virNodeDeviceObjIsAutostart, false for them. */
    autostart = 7;
    EXPECT_OK(virNodeDeviceGetAutostart(computer, &autostart) == 0 && autostart == 0, "GetAutostart computer: 0");
    autostart = 7;
    EXPECT_OK(virNodeDeviceGetAutostart(net, &autostart) == 0 && autostart == 0, "GetAutostart an interface: 0");
    autostart = 7;
    EXPECT_OK(virNodeDeviceGetAutostart(pci, &autostart) == 0 && autostart == 0,
              "GetAutostart a PCI device on a connection without definitions: 0");
    /* nodeDeviceIsActive / IsPersistent. */
    EXPECT_OK(virNodeDeviceIsActive(computer) == 1 && virNodeDeviceIsPersistent(computer) == 0 &&
                  virNodeDeviceIsActive(net) == 1 && virNodeDeviceIsPersistent(net) == 0,
              "IsActive/IsPersistent computer and an interface: 1, 0");
    /* libvirt-nodedev.c: virCheckNodeDeviceReturn. */
    EXPECT(virNodeDeviceCreate(NULL, 0) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "Create NULL");
    EXPECT(virNodeDeviceDestroy(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "Destroy NULL");
    EXPECT(virNodeDeviceUndefine(NULL, 0) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "Undefine NULL");
    EXPECT(virNodeDeviceIsActive(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "IsActive NULL");
    EXPECT(virNodeDeviceIsPersistent(NULL) == -1, VIR_ERR_INVALID_NODE_DEVICE, NODEDEV, "IsPersistent NULL");
    virNodeDeviceFree(computer);
    virNodeDeviceFree(net);
    virNodeDeviceFree(pci);
}

/* A defined (persistent, inactive) mdev: a connection keeping definitions. */
static void defined_mdev_calls(void)
{
    char dir[] = "/tmp/nodedev-conformance-confdir-XXXXXX", uri[128], cmd[160];
    virConnectPtr conn;
    virNodeDevicePtr def;
    int autostart = 7;

    CHECK(mkdtemp(dir) != NULL, "temporary confdir");
    snprintf(uri, sizeof uri, "test:///default?confdir=%s", dir);
    conn = virConnectOpen(uri);
    CHECK(conn != NULL, "open with confdir");
    if (conn == NULL)
        return;
    def = virNodeDeviceDefineXML(conn, "<device><parent>" MDEV_PARENT "</parent><capability type='mdev'><type id='"
                                       MDEV_TYPE "'/><uuid>" MDEV_UUID "</uuid></capability></device>", 0);
    EXPECT_OK(def != NULL && virNodeDeviceIsActive(def) == 0 && virNodeDeviceIsPersistent(def) == 1,
              "DefineXML: inactive, persistent");
    if (def != NULL) {
        /* node_device_driver.c nodeDeviceDestroy: not active -> OPERATION_INVALID. */
        EXPECT(virNodeDeviceDestroy(def) == -1, VIR_ERR_OPERATION_INVALID, NODEDEV, "Destroy a defined, inactive mdev");
        EXPECT_OK(virNodeDeviceSetAutostart(def, 1) == 0 && virNodeDeviceGetAutostart(def, &autostart) == 0 &&
                      autostart == 1,
                  "SetAutostart a defined mdev");
        EXPECT_OK(virNodeDeviceUndefine(def, 0) == 0, "Undefine the defined mdev");
        /* Neither live nor defined: gone (nodeDeviceObjFindByName). */
        EXPECT(virNodeDeviceUndefine(def, 0) == -1, VIR_ERR_NO_NODE_DEVICE, NODEDEV, "Undefine again: gone");
        virNodeDeviceFree(def);
    }
    virConnectClose(conn);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "remove the confdir");
}

/* libvirt-nodedev.c virNodeDeviceLookupSCSIHostByWWN, node_device_driver.c
 * nodeDeviceLookupSCSIHostByWWN: no fc_host matches -> NULL without a
 * reported cause; virDispatchError's generic error. */
static void scsi_host_calls(virConnectPtr conn)
{
    EXPECT(virNodeDeviceLookupSCSIHostByWWN(NULL, NULL, NULL, 1) == NULL, VIR_ERR_INVALID_CONN, NODEDEV,
           "LookupSCSIHostByWWN NULL conn first");
    EXPECT(virNodeDeviceLookupSCSIHostByWWN(conn, NULL, NULL, 1) == NULL && strstr(virGetLastErrorMessage(), "wwnn"),
           VIR_ERR_INVALID_ARG, NODEDEV, "LookupSCSIHostByWWN wwnn NULL");
    EXPECT(virNodeDeviceLookupSCSIHostByWWN(conn, "20000000c9831b4b", NULL, 1) == NULL &&
               strstr(virGetLastErrorMessage(), "wwpn"),
           VIR_ERR_INVALID_ARG, NODEDEV, "LookupSCSIHostByWWN wwpn NULL before flags");
    EXPECT(virNodeDeviceLookupSCSIHostByWWN(conn, "20000000c9831b4b", "10000000c9831b4b", 1) == NULL,
           VIR_ERR_INVALID_ARG, NODEDEV, "LookupSCSIHostByWWN flags");
    EXPECT(virNodeDeviceLookupSCSIHostByWWN(conn, "20000000c9831b4b", "10000000c9831b4b", 0) == NULL,
           VIR_ERR_INTERNAL_ERROR, NONE, "LookupSCSIHostByWWN no match");
}

/* virerror.c: the copies libvirt makes of an empty error. */
static void error_copies(void)
{
    virError to;
    virErrorPtr saved;

    virResetLastError();
    memset(&to, 0x5a, sizeof to);
    /* virCopyLastError: memset, then the (empty) thread error copied: 0. */
    CONFORM(virCopyLastError(&to) == 0 && to.code == 0 && to.domain == 0 && to.message == NULL,
            "virCopyLastError with no error: 0, zeroed");
    CONFORM(virCopyLastError(NULL) == -1, "virCopyLastError(NULL): -1");
    memset(&to, 0x5a, sizeof to);
    /* virConnCopyLastError: memset before the connection check. */
    CONFORM(virConnCopyLastError(NULL, &to) == -1 && to.code == 0 && to.message == NULL,
            "virConnCopyLastError(NULL conn): -1, zeroed");
    /* virSaveLastError: always a new object, a copy of the empty error. */
    saved = virSaveLastError();
    CONFORM(saved != NULL && saved->code == VIR_ERR_OK && saved->message == NULL, "virSaveLastError with no error");
    virFreeError(saved);
    virFreeError(NULL);
    virResetError(NULL);
    /* virGetLastErrorDomain / Code after an error. */
    virNodeDeviceLookupByName(NULL, "computer");
    CONFORM(virGetLastErrorCode() == VIR_ERR_INVALID_CONN && virGetLastErrorDomain() == NODEDEV,
            "virGetLastErrorCode/Domain");
    saved = virSaveLastError();
    CONFORM(saved != NULL && saved->code == VIR_ERR_INVALID_CONN && saved->message != NULL &&
                saved->message != virGetLastError()->message,
            "virSaveLastError: a deep copy");
    virFreeError(saved);
}

/* ---- events: src/libvirt-nodedev.c, src/util/virevent.c ---- */

static int event_calls_seen;
static void on_update(virConnectPtr conn, virNodeDevicePtr dev, void *opaque)
{
    (void)conn; (void)dev; (void)opaque;
    event_calls_seen++;
}
static int timer_calls;
static void on_timer(int timer, void *opaque)
{
    (void)timer; (void)opaque;
    timer_calls++;
}

static void event_calls(virConnectPtr conn, virConnectPtr ro)
{
    virNodeDevicePtr rdev = virNodeDeviceLookupByName(ro, "pci_0000_05_00_0");
    virConnectNodeDeviceEventGenericCallback cb = VIR_NODE_DEVICE_EVENT_CALLBACK(on_update);
    int id, timer;

    /* virevent.c: without a registered loop the calls return -1, no error. */
    CONFORM(virEventAddTimeout(0, on_timer, NULL, NULL) == -1, "virEventAddTimeout without a loop: -1");
    CONFORM(virEventRemoveTimeout(1) == -1 && virEventRemoveHandle(1) == -1,
            "virEventRemove* without a loop: -1");
    /* libvirt-nodedev.c virConnectNodeDeviceEventRegisterAny: conn, dev
     * (its connection must match), cb, eventID >= 0, eventID < LAST. */
    EXPECT(virConnectNodeDeviceEventRegisterAny(NULL, NULL, -1, NULL, NULL, NULL) == -1, VIR_ERR_INVALID_CONN, NODEDEV,
           "EventRegisterAny NULL conn first");
    EXPECT(virConnectNodeDeviceEventRegisterAny(conn, rdev, -1, NULL, NULL, NULL) == -1 &&
               strstr(virGetLastErrorMessage(), "must match connection"),
           VIR_ERR_INVALID_ARG, NODEDEV, "EventRegisterAny device of another connection");
    EXPECT(virConnectNodeDeviceEventRegisterAny(conn, NULL, -1, NULL, NULL, NULL) == -1 &&
               strstr(virGetLastErrorMessage(), "cb"),
           VIR_ERR_INVALID_ARG, NODEDEV, "EventRegisterAny cb NULL before eventID");
    EXPECT(virConnectNodeDeviceEventRegisterAny(conn, NULL, -1, cb, NULL, NULL) == -1, VIR_ERR_INVALID_ARG, NODEDEV,
           "EventRegisterAny eventID negative");
    EXPECT(virConnectNodeDeviceEventRegisterAny(conn, NULL, VIR_NODE_DEVICE_EVENT_ID_UPDATE + 1, cb, NULL, NULL) == -1,
           VIR_ERR_INVALID_ARG, NODEDEV, "EventRegisterAny eventID LAST (UPDATE + 1 in 9.x)");
    /* object_event.c virObjectEventStateRegisterID: no timer without a loop. */
    EXPECT(virConnectNodeDeviceEventRegisterAny(conn, NULL, VIR_NODE_DEVICE_EVENT_ID_UPDATE, cb, NULL, NULL) == -1,
           VIR_ERR_INTERNAL_ERROR, NONE, "EventRegisterAny without an event loop");
    /* libvirt-nodedev.c virConnectNodeDeviceEventDeregisterAny. */
    EXPECT(virConnectNodeDeviceEventDeregisterAny(NULL, -1) == -1, VIR_ERR_INVALID_CONN, NODEDEV,
           "EventDeregisterAny NULL conn first");
    EXPECT(virConnectNodeDeviceEventDeregisterAny(conn, -1) == -1, VIR_ERR_INVALID_ARG, NODEDEV,
           "EventDeregisterAny callbackID negative");
    /* object_event.c virObjectEventCallbackListRemoveID (VIR_FROM_NONE). */
    EXPECT(virConnectNodeDeviceEventDeregisterAny(conn, 4711) == -1, VIR_ERR_INVALID_ARG, NONE,
           "EventDeregisterAny unknown callbackID");

    /* virevent.c virEventRegisterDefaultImpl: 0, and again 0. */
    EXPECT_OK(virEventRegisterDefaultImpl() == 0 && virEventRegisterDefaultImpl() == 0,
              "virEventRegisterDefaultImpl twice: 0");
    /* vireventglib.c: timer ids are positive; removing one twice fails. */
    timer = virEventAddTimeout(0, on_timer, NULL, NULL);
    CONFORM(timer > 0, "virEventAddTimeout: a positive id");
    EXPECT_OK(virEventRunDefaultImpl() == 0 && timer_calls >= 1, "virEventRunDefaultImpl fires a 0 ms timer");
    CONFORM(virEventRemoveTimeout(timer) == 0 && virEventRemoveTimeout(timer) == -1,
            "virEventRemoveTimeout: 0, then -1");
    CONFORM(virEventRemoveHandle(4711) == -1, "virEventRemoveHandle of no handle: -1");

    id = virConnectNodeDeviceEventRegisterAny(conn, NULL, VIR_NODE_DEVICE_EVENT_ID_UPDATE, cb, NULL, NULL);
    EXPECT_OK(id >= 0, "EventRegisterAny with the default loop");
    /* object_event.c virObjectEventCallbackListAddID: the same callback twice. */
    EXPECT(virConnectNodeDeviceEventRegisterAny(conn, NULL, VIR_NODE_DEVICE_EVENT_ID_UPDATE, cb, NULL, NULL) == -1,
           VIR_ERR_INVALID_ARG, NONE, "EventRegisterAny the same callback twice");
    EXPECT_OK(virConnectNodeDeviceEventDeregisterAny(conn, id) == 0, "EventDeregisterAny");
    EXPECT(virConnectNodeDeviceEventDeregisterAny(conn, id) == -1, VIR_ERR_INVALID_ARG, NONE,
           "EventDeregisterAny twice");
    virNodeDeviceFree(rdev);
}
/* ==== end of the fidelity block ==== */

static void host_without_iommu(void)
{
    char path[] = "/tmp/nodedev-conformance-XXXXXX.json";
    char uri[128];
    int fd = mkstemps(path, 5);
    FILE *f;
    virConnectPtr conn;
    virNodeDevicePtr dev;

    CHECK(fd >= 0, "temporary host description");
    if (fd < 0)
        return;
    f = fdopen(fd, "w");
    fputs("{\"iommu\": false,\n"
          " \"drivers\": [{\"name\": \"e1000e\", \"module\": \"e1000e\", \"loaded\": true, \"ids\": [\"8086:10d3\"]},\n"
          "             {\"name\": \"vfio-pci\", \"module\": \"vfio_pci\", \"loaded\": true}],\n"
          " \"devices\": [{\"address\": \"0000:03:00.0\", \"vendor\": \"0x8086\", \"device\": \"0x10d3\",\n"
          "              \"class\": \"0x020000\", \"driver\": \"e1000e\"}]}\n",
          f);
    fclose(f);
    snprintf(uri, sizeof uri, "test://%s", path);
    conn = virConnectOpen(uri);
    CHECK(conn != NULL, "open the host without an IOMMU");
    if (conn != NULL) {
        dev = virNodeDeviceLookupByName(conn, "pci_0000_03_00_0");
        /* qemu_driver.c qemuNodeDeviceDetachFlags: vfio on a host without
         * VFIO support -> VIR_ERR_ARGUMENT_UNSUPPORTED. */
        EXPECT(virNodeDeviceDetachFlags(dev, "vfio", 0) == -1, VIR_ERR_ARGUMENT_UNSUPPORTED, NODEDEV,
               "DetachFlags vfio without an IOMMU");
        EXPECT(virNodeDeviceDettach(dev) == -1, VIR_ERR_ARGUMENT_UNSUPPORTED, NODEDEV,
               "Dettach (vfio) without an IOMMU");
        virNodeDeviceFree(dev);
        virConnectClose(conn);
    }
    unlink(path);
}

int main(void)
{
    virConnectPtr conn, ro;

    connection_calls();
    conn = virConnectOpen("test:///default");
    ro = virConnectOpenReadOnly("test:///default");
    CHECK(conn != NULL && ro != NULL, "open test:///default");
    if (conn != NULL && ro != NULL) {
        listing_calls(conn);
        lookup_calls(conn);
        tree_calls(conn);
        device_handle_calls(conn);
        changing_calls(conn, ro);
        error_family(conn);
        /* fidelity block */
        mdev_calls(conn, ro);
        scsi_host_calls(conn);
        error_copies();
        event_calls(conn, ro);
    }
    defined_mdev_calls();
    host_without_iommu();
    if (ro)
        virConnectClose(ro);
    if (conn)
        virConnectClose(conn);
    printf("libvirt conformance checks: %d\n", conformance);
    printf("libvirt_conformance: %d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
