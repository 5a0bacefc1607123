/*
 * Guest assignment through the C API on test:///default: prepare a GPU,
 * its audio function and a VF for "vm1" (managed, vfio), see "vm2" refused,
 * release them and find every device back on its original driver; group
 * detach (VIR_NODE_DEVICE_DETACH_GROUP), the FORCE flag, unmanaged
 * prepare, the authorization callback, and bad input for each new call.
 */
#include "check.h"

#define GPU "pci_0000_01_00_0"
#define AUDIO "pci_0000_01_00_1"
#define VF "pci_0000_04_10_0"
#define VF2 "pci_0000_04_10_2"
#define NIC1 "pci_0000_03_01_0"
#define NIC2 "pci_0000_03_02_0"
#define IGPU "pci_0000_00_02_0"

static virNodeDevicePtr lookup(virConnectPtr conn, const char *name)
{
    virNodeDevicePtr d = virNodeDeviceLookupByName(conn, name);
    if (d == NULL) {
        fprintf(stderr, "cannot look up %s: %s\n", name, virGetLastErrorMessage());
        exit(2);
    }
    return d;
}

static void prepare_and_release(virConnectPtr conn)
{
    virNodeDevicePtr devs[3] = {lookup(conn, GPU), lookup(conn, AUDIO), lookup(conn, VF)};
    virNodeDevicePtr vf = devs[2];
    int i;

    CHECK(virNodeDevicePrepare(conn, "vm1", devs, 3, "vfio", VIR_NODE_DEVICE_PREPARE_MANAGED) == 0,
          "prepare GPU, audio and VF for vm1");
    CHECK_NO_ERROR("prepare");
    CHECK(driver_is(conn, GPU, "vfio-pci") && driver_is(conn, AUDIO, "vfio-pci") &&
              driver_is(conn, VF, "vfio-pci"),
          "all three on vfio-pci");

    /* Same owner again: fine. Another owner: refused, the owner named. */
    CHECK(virNodeDevicePrepare(conn, "vm1", &vf, 1, "vfio", VIR_NODE_DEVICE_PREPARE_MANAGED) == 0,
          "prepare again for vm1");
    CHECK(virNodeDevicePrepare(conn, "vm2", &vf, 1, "vfio", VIR_NODE_DEVICE_PREPARE_MANAGED) == -1,
          "vm2 cannot take vm1's VF");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "assigned to vm1", "vm2 prepare");
    CHECK(virNodeDevicePrepare(conn, "vm2", &devs[1], 1, "vfio", 0) == -1,
          "vm2 cannot take vm1's audio function, even unmanaged");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "vm1", "vm2 unmanaged prepare");

    /* The host cannot take them back or reset them while vm1 owns them. */
    CHECK(virNodeDeviceReAttach(devs[0]) == -1, "reattach of vm1's GPU refused");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "release it from vm1", "reattach owned");
    CHECK(virNodeDeviceReset(vf) == -1, "reset of vm1's VF refused");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "vm1", "reset owned");
    CHECK(virNodeDeviceRelease(conn, "vm2", devs, 3, 0) == -1, "vm2 cannot release vm1's devices");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "only vm1", "release by vm2");

    CHECK(virNodeDeviceRelease(conn, "vm1", NULL, 0, 0) == 3, "release all of vm1: 3 devices");
    CHECK_NO_ERROR("release");
    CHECK(driver_is(conn, GPU, "nouveau"), "GPU back on nouveau");
    CHECK(driver_is(conn, AUDIO, "snd_hda_intel"), "audio back on snd_hda_intel");
    CHECK(driver_is(conn, VF, "igbvf"), "VF back on igbvf");
    CHECK(virNodeDeviceRelease(conn, "vm1", devs, 3, 0) == -1, "nothing left to release");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "not assigned to vm1", "double release");

    /* Transaction: the GPU alone is refused up front (its audio function is in its group). */
    CHECK(virNodeDevicePrepare(conn, "vm1", devs, 1, "vfio", VIR_NODE_DEVICE_PREPARE_MANAGED) == -1,
          "GPU without its audio function");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "snd_hda_intel", "group not viable");
    CHECK(driver_is(conn, GPU, "nouveau"), "GPU untouched");
    for (i = 0; i < 3; i++)
        virNodeDeviceFree(devs[i]);
}

static void unmanaged(virConnectPtr conn)
{
    virNodeDevicePtr vf2 = lookup(conn, VF2);
    CHECK(virNodeDevicePrepare(conn, "vm1", &vf2, 1, "vfio", 0) == -1, "unmanaged VF2 still on igbvf");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "unmanaged", "unmanaged not on stub");
    CHECK(driver_is(conn, VF2, "igbvf"), "unmanaged prepare moved nothing");
    CHECK(virNodeDeviceDetachFlags(vf2, "vfio", 0) == 0, "admin detaches VF2");
    CHECK(virNodeDevicePrepare(conn, "vm1", &vf2, 1, "vfio", 0) == 0, "unmanaged prepare");
    CHECK(virNodeDeviceRelease(conn, "vm1", &vf2, 1, 0) == 1, "unmanaged release");
    CHECK(driver_is(conn, VF2, "vfio-pci"), "unmanaged release leaves it on its stub");
    CHECK(virNodeDeviceReAttach(vf2) == 0, "admin reattaches VF2");
    CHECK(driver_is(conn, VF2, "igbvf"), "VF2 back on igbvf");
    virNodeDeviceFree(vf2);
}

static void group_and_force(virConnectPtr conn)
{
    virNodeDevicePtr nic1 = lookup(conn, NIC1), nic2 = lookup(conn, NIC2), igpu = lookup(conn, IGPU);
    CHECK(virNodeDeviceDetachFlags(nic1, "vfio", VIR_NODE_DEVICE_DETACH_GROUP) == 0, "group detach");
    CHECK(driver_is(conn, NIC1, "vfio-pci") && driver_is(conn, NIC2, "vfio-pci"),
          "both NICs of group 5 on vfio-pci");
    CHECK(driver_is(conn, "pci_0000_02_00_0", NULL), "the bridge stays as it was");
    CHECK(virNodeDeviceReAttach(nic1) == 0 && virNodeDeviceReAttach(nic2) == 0, "reattach both");
    CHECK(driver_is(conn, NIC1, "e1000") && driver_is(conn, NIC2, "e1000"), "both back on e1000");

    CHECK(virNodeDeviceDetachFlags(igpu, "vfio", 0) == -1, "the boot VGA is refused");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "boot VGA", "boot VGA");
    CHECK(virNodeDeviceDetachFlags(igpu, "vfio", VIR_NODE_DEVICE_FORCE) == 0, "FORCE detaches it");
    CHECK(driver_is(conn, IGPU, "vfio-pci"), "boot VGA on vfio-pci");
    CHECK(virNodeDeviceReAttach(igpu) == 0 && driver_is(conn, IGPU, "i915"), "boot VGA back on i915");
    virNodeDeviceFree(nic1);
    virNodeDeviceFree(nic2);
    virNodeDeviceFree(igpu);
}

static int auth_calls, frees;

static char last_driver[64];

static int deny_intruder(virConnectPtr conn, virNodeDeviceOperation op, const char *device,
                         const char *owner, const char *driver, void *opaque)
{
    (void)conn;
    (void)device;
    auth_calls++;
    snprintf(last_driver, sizeof(last_driver), "%s", driver ? driver : "(null)");
    CHECK(opaque == (void *)&auth_calls, "opaque is passed through");
    return !(op == VIR_NODE_DEVICE_OP_PREPARE && owner != NULL && strcmp(owner, "intruder") == 0);
}

static void count_free(void *opaque)
{
    CHECK(opaque == (void *)&auth_calls, "freecb gets opaque");
    frees++;
}

static void authorization(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    virNodeDevicePtr vf = lookup(conn, VF);
    CHECK(virConnectSetNodeDeviceAuthCallback(conn, deny_intruder, &auth_calls, count_free) == 0,
          "register");
    CHECK(virNodeDevicePrepare(conn, "intruder", &vf, 1, "vfio", VIR_NODE_DEVICE_PREPARE_MANAGED) == -1,
          "intruder denied");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, "authorization callback denied prepare",
                "denied");
    CHECK(driver_is(conn, VF, "igbvf"), "denied prepare moved nothing");
    CHECK(auth_calls == 1, "asked once (%d)", auth_calls);
    CHECK(strcmp(last_driver, "vfio-pci") == 0, "prepare is told the stub (%s)", last_driver);
    CHECK(virNodeDeviceDetachFlags(vf, "vfio", 0) == 0, "detach allowed");
    CHECK(strcmp(last_driver, "vfio-pci") == 0, "detach is told the stub (%s)", last_driver);
    CHECK(virNodeDeviceReAttach(vf) == 0, "reattach allowed");
    CHECK(strcmp(last_driver, "igbvf") == 0, "reattach is told the original driver (%s)", last_driver);
    CHECK(auth_calls == 3, "asked for detach and reattach (%d)", auth_calls);
    /* Replacing frees the old data; removing frees nothing new; close frees the last. */
    CHECK(virConnectSetNodeDeviceAuthCallback(conn, deny_intruder, &auth_calls, count_free) == 0,
          "replace");
    CHECK(frees == 1, "old callback's data freed on replace (%d)", frees);
    CHECK(virConnectSetNodeDeviceAuthCallback(conn, NULL, NULL, NULL) == 0, "remove");
    CHECK(frees == 2, "freed on removal (%d)", frees);
    CHECK(virNodeDevicePrepare(conn, "intruder", &vf, 1, "vfio", VIR_NODE_DEVICE_PREPARE_MANAGED) == 0,
          "no callback: allowed");
    CHECK(virNodeDeviceRelease(conn, "intruder", NULL, 0, 0) == 1, "release");
    CHECK(virConnectSetNodeDeviceAuthCallback(conn, deny_intruder, &auth_calls, count_free) == 0,
          "register again");
    virNodeDeviceFree(vf);
    CHECK(virConnectClose(conn) == 0, "close");
    CHECK(frees == 3, "freed when the connection closes (%d)", frees);
}

static void bad_input(virConnectPtr conn)
{
    virNodeDevicePtr vf = lookup(conn, VF);
    virNodeDevicePtr none[1] = {NULL};
    virConnectPtr other = virConnectOpen("test:///default");
    virNodeDevicePtr foreign = lookup(other, VF);

    CHECK(virNodeDevicePrepare(NULL, "vm1", &vf, 1, NULL, 0) == -1, "NULL conn");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, -1, NULL, "prepare NULL conn");
    CHECK(virNodeDevicePrepare(conn, NULL, &vf, 1, NULL, 0) == -1, "NULL owner");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "owner", "NULL owner");
    CHECK(virNodeDevicePrepare(conn, "", &vf, 1, NULL, 0) == -1, "empty owner");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "owner", "empty owner");
    CHECK(virNodeDevicePrepare(conn, "vm1", NULL, 1, NULL, 0) == -1, "NULL devs");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "devs", "NULL devs");
    CHECK(virNodeDevicePrepare(conn, "vm1", &vf, 0, NULL, 0) == -1, "ndevs 0");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "ndevs", "ndevs 0");
    CHECK(virNodeDevicePrepare(conn, "vm1", none, 1, NULL, 0) == -1, "NULL handle in devs");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "devs[0]", "NULL handle");
    CHECK(virNodeDevicePrepare(conn, "vm1", &foreign, 1, NULL, 0) == -1, "handle of another conn");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "another connection", "foreign handle");
    CHECK(virNodeDevicePrepare(conn, "vm1", &vf, 1, "vfio-pci", 0) == -1, "kernel module name");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "driverName", "bad driver");
    CHECK(virNodeDevicePrepare(conn, "vm1", &vf, 1, NULL, 1) == -1, "unknown flag bit 0");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "flags", "prepare flags");
    CHECK(virNodeDevicePrepare(conn, "vm1", &vf, 1, NULL, VIR_NODE_DEVICE_DETACH_GROUP) == -1,
          "a detach-only flag");
    CHECK(driver_is(conn, VF, "igbvf"), "no bad call moved the VF");

    CHECK(virNodeDeviceRelease(NULL, "vm1", NULL, 0, 0) == -1, "release NULL conn");
    CHECK(virNodeDeviceRelease(conn, NULL, NULL, 0, 0) == -1, "release NULL owner");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "owner", "release NULL owner");
    CHECK(virNodeDeviceRelease(conn, "vm1", NULL, 2, 0) == -1, "release NULL devs with ndevs");
    CHECK(virNodeDeviceRelease(conn, "vm1", NULL, 0, 4) == -1, "release flags");
    CHECK(virNodeDeviceRelease(conn, "nobody", NULL, 0, 0) == 0, "release of an owner with nothing: 0");

    CHECK(virNodeDeviceDetachFlags(vf, NULL, 1u << 20) == -1, "unknown detach flag");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "flags", "detach flags");
    CHECK(virConnectSetNodeDeviceAuthCallback(NULL, NULL, NULL, NULL) == -1, "auth NULL conn");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, -1, NULL, "auth NULL conn");

    virNodeDeviceFree(foreign);
    virConnectClose(other);
    virNodeDeviceFree(vf);
}

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    if (conn == NULL) {
        fprintf(stderr, "cannot open test:///default: %s\n", virGetLastErrorMessage());
        return 2;
    }
    prepare_and_release(conn);
    unmanaged(conn);
    group_and_force(conn);
    bad_input(conn);
    virConnectClose(conn);
    authorization();
    return check_summary("assign");
}
