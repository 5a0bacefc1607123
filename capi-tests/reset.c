/*
 * virNodeDeviceReset: allowed on a stub, refused under a host driver
 * (VIR_ERR_OPERATION_INVALID), unsupported without a kernel reset method
 * (VIR_ERR_INTERNAL_ERROR, as libvirt's virPCIDeviceReset), denied on a
 * read-only connection.
 */
#include "check.h"

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    virConnectPtr ro = virConnectOpenReadOnly("test:///default");
    virNodeDevicePtr vf, nic, ro_vf;

    CHECK(conn != NULL && ro != NULL, "open both connections");
    if (conn == NULL || ro == NULL)
        return check_summary("reset");

    /* A VF with FLR, on its host driver: refused. */
    vf = virNodeDeviceLookupByName(conn, "pci_0000_04_10_0");
    CHECK(vf != NULL, "lookup VF");
    if (vf == NULL)
        return check_summary("reset");
    CHECK(virNodeDeviceReset(vf) == -1, "reset under igbvf refused");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "igbvf", "reset under host driver");
    CHECK(driver_is(conn, "pci_0000_04_10_0", "igbvf"), "still on igbvf");

    /* On a stub: allowed, several times, with every stub. */
    CHECK(virNodeDeviceDetachFlags(vf, "vfio", 0) == 0, "detach VF to vfio");
    CHECK(virNodeDeviceReset(vf) == 0, "reset on vfio-pci");
    CHECK_NO_ERROR("reset");
    CHECK(virNodeDeviceReset(vf) == 0, "reset again");
    CHECK(driver_is(conn, "pci_0000_04_10_0", "vfio-pci"), "reset keeps the driver");

    /* Read-only connection: denied, device untouched. */
    ro_vf = virNodeDeviceLookupByName(ro, "pci_0000_04_10_0");
    CHECK(ro_vf != NULL, "read-only lookup");
    if (ro_vf != NULL) {
        CHECK(virNodeDeviceReset(ro_vf) == -1, "read-only reset");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, "read-only", "read-only reset");
        virNodeDeviceFree(ro_vf);
    }

    CHECK(virNodeDeviceReAttach(vf) == 0, "reattach VF");
    CHECK(virNodeDeviceDetachFlags(vf, "kvm", 0) == 0, "detach VF to kvm");
    CHECK(virNodeDeviceReset(vf) == 0, "reset on pci-stub");
    CHECK(virNodeDeviceReAttach(vf) == 0, "reattach VF");
    CHECK(driver_is(conn, "pci_0000_04_10_0", "igbvf"), "back on igbvf");
    virNodeDeviceFree(vf);

    /* An e1000 behind a conventional bridge has no reset method. */
    nic = virNodeDeviceLookupByName(conn, "0000:03:01.0");
    CHECK(nic != NULL, "lookup NIC");
    if (nic != NULL) {
        CHECK(virNodeDeviceReset(nic) == -1, "reset under e1000 refused");
        CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, NULL, "reset under e1000");
        CHECK(virNodeDeviceDetachFlags(nic, "kvm", 0) == 0, "detach NIC to kvm");
        CHECK(virNodeDeviceReset(nic) == -1, "reset without a method");
        CHECK_ERROR(VIR_ERR_INTERNAL_ERROR, VIR_FROM_NODEDEV, "reset method", "no reset method");
        CHECK(virNodeDeviceReAttach(nic) == 0, "reattach NIC");
        CHECK(driver_is(conn, "pci_0000_03_01_0", "e1000"), "NIC back on e1000");
        virNodeDeviceFree(nic);
    }

    virConnectClose(ro);
    virConnectClose(conn);
    return check_summary("reset");
}
