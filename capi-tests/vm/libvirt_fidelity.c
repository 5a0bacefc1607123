/*
 * The libvirt connection calls and error semantics on the real kernel, in
 * the QEMU guest (suite-fidelity.sh). Written against libvirt's own headers
 * only, linked statically with libnodedev.a. Usage: libvirt_fidelity EDU
 * (the edu device's address, on no driver). Prints NODEDEV-TEST lines.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static void result(const char *name, int ok)
{
    if (ok)
        printf("NODEDEV-TEST PASS fidelity-%s\n", name);
    else
        printf("NODEDEV-TEST FAIL fidelity-%s: last error %d: %s\n", name, virGetLastErrorCode(),
               virGetLastErrorMessage());
}

static int closed = -1;
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    (void)conn; (void)opaque;
    closed = reason;
}

int main(int argc, char **argv)
{
    virConnectPtr conn, ro;
    virNodeDevicePtr edu, redu;
    unsigned long v = 0, major = 0, minor = 0, micro = 0;
    struct utsname u;
    char host[256], *s;

    if (argc != 2) {
        fprintf(stderr, "usage: libvirt_fidelity EDU\n");
        return 2;
    }
    conn = virConnectOpenAuth("nodedev:///system", virConnectAuthPtrDefault, 0);
    ro = virConnectOpenAuth("nodedev:///system", NULL, VIR_CONNECT_RO);
    result("open-auth", conn != NULL && ro != NULL);
    if (conn == NULL || ro == NULL)
        return 1;
    result("open-auth-unknown-flag",
           virConnectOpenAuth("nodedev:///system", NULL, 1u << 7) == NULL && virGetLastErrorCode() == VIR_ERR_INVALID_ARG);

    /* The "hypervisor" version is the running kernel's. */
    uname(&u);
    sscanf(u.release, "%lu.%lu.%lu", &major, &minor, &micro);
    result("version-is-kernel", virConnectGetVersion(conn, &v) == 0 && v == major * 1000000 + minor * 1000 + micro);
    s = virConnectGetHostname(conn);
    result("hostname", s != NULL && gethostname(host, sizeof host) == 0 && strcmp(s, host) == 0);
    free(s);
    result("type-alive-secure-unencrypted", strcmp(virConnectGetType(conn), "NODEDEV") == 0 &&
                                                virConnectIsAlive(conn) == 1 && virConnectIsSecure(conn) == 1 &&
                                                virConnectIsEncrypted(conn) == 0);

    /* The root of libvirt's tree is a device (node_device_udev.c
     * udevSetupSystemDev), without a parent. */
    {
        virNodeDevicePtr computer = virNodeDeviceLookupByName(conn, "computer");
        result("computer-is-the-root", computer != NULL && virNodeDeviceGetParent(computer) == NULL &&
                                           virGetLastErrorCode() == VIR_ERR_INTERNAL_ERROR);
        if (computer != NULL)
            virNodeDeviceFree(computer);
    }
    /* Names that are no device, whatever their shape. */
    result("computer-typo-no-node-device",
           virNodeDeviceLookupByName(conn, "computer_") == NULL && virGetLastErrorCode() == VIR_ERR_NO_NODE_DEVICE);
    result("net-name-no-node-device", virNodeDeviceLookupByName(conn, "net_eth0_00_11_22_33_44_55") == NULL &&
                                          virGetLastErrorCode() == VIR_ERR_NO_NODE_DEVICE);

    edu = virNodeDeviceLookupByName(conn, argv[1]);
    redu = virNodeDeviceLookupByName(ro, argv[1]);
    result("lookup-edu", edu != NULL && redu != NULL);
    if (edu == NULL || redu == NULL)
        return 1;
    /* Read-only is checked before flags and driver name. */
    result("read-only-first", virNodeDeviceDetachFlags(redu, "bogus", 1u << 3) == -1 &&
                                  virGetLastErrorCode() == VIR_ERR_OPERATION_DENIED);
    result("flags-before-driver", virNodeDeviceDetachFlags(edu, "bogus", 1u << 3) == -1 &&
                                      virGetLastErrorCode() == VIR_ERR_INVALID_ARG &&
                                      strstr(virGetLastErrorMessage(), "flags") != NULL);
    /* Idempotent as libvirt: detach twice, reattach twice. */
    result("detach-vfio", virNodeDeviceDetachFlags(edu, "vfio", 0) == 0);
    result("detach-vfio-again", virNodeDeviceDetachFlags(edu, "vfio", 0) == 0 && virGetLastError() == NULL);
    result("reattach", virNodeDeviceReAttach(edu) == 0);
    result("reattach-again", virNodeDeviceReAttach(edu) == 0);
    virNodeDeviceFree(redu);
    virConnectClose(ro);

    /* The close callback fires when the last reference goes. */
    result("close-callback-registered", virConnectRegisterCloseCallback(conn, on_close, NULL, NULL) == 0);
    virConnectClose(conn);
    result("close-callback-waits-for-devices", closed == -1);
    virNodeDeviceFree(edu);
    result("close-callback-client", closed == VIR_CONNECT_CLOSE_REASON_CLIENT);
    return 0;
}
