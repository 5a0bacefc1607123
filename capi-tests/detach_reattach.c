/*
 * Detach / reattach round trips on test:///default for the three stub
 * drivers ("vfio", "kvm", "xen") and several kinds of device, checking the
 * driver in the XML before and after; the default driver
 * (virNodeDeviceDettach); reattach to a named host driver
 * (virNodeDeviceReAttachFlags); the state rules.
 */
#include "check.h"

struct device {
    const char *name, *driver; /* driver: NULL when it has none */
};

static const struct device devices[] = {
    {"pci_0000_03_01_0", "e1000"},   /* NIC behind a PCI bridge */
    {"pci_0000_04_10_0", "igbvf"},   /* SR-IOV VF */
    {"pci_0000_05_00_0", NULL},      /* no driver: must end with none */
    {"pci_0000_01_00_1", "snd_hda_intel"},
};

static const struct {
    const char *name, *kernel;
} stubs[] = {
    {"vfio", "vfio-pci"},
    {"kvm", "pci-stub"},
    {"xen", "xen-pciback"},
};

static void round_trip(virConnectPtr conn, const struct device *d, const char *stub, const char *kernel)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, d->name);
    CHECK(dev != NULL, "lookup %s", d->name);
    if (dev == NULL)
        return;
    CHECK(driver_is(conn, d->name, d->driver), "%s starts on its host driver", d->name);
    CHECK(virNodeDeviceDetachFlags(dev, stub, 0) == 0, "detach %s to %s", d->name, stub);
    CHECK_NO_ERROR("detach");
    CHECK(driver_is(conn, d->name, kernel), "%s on %s after detach", d->name, kernel);
    /* Detaching again to the same stub is a no-op success. */
    CHECK(virNodeDeviceDetachFlags(dev, stub, 0) == 0, "detach %s to %s again", d->name, stub);
    CHECK(driver_is(conn, d->name, kernel), "%s still on %s", d->name, kernel);
    CHECK(virNodeDeviceReAttach(dev) == 0, "reattach %s from %s", d->name, stub);
    CHECK_NO_ERROR("reattach");
    CHECK(driver_is(conn, d->name, d->driver), "%s back on its original driver after %s", d->name,
          stub);
    virNodeDeviceFree(dev);
}

static void default_stub(virConnectPtr conn)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "0000:04:10.2");
    CHECK(dev != NULL, "lookup 04:10.2");
    if (dev == NULL)
        return;
    CHECK(virNodeDeviceDettach(dev) == 0, "virNodeDeviceDettach");
    CHECK(driver_is(conn, "pci_0000_04_10_2", "vfio-pci"), "Dettach means vfio");
    CHECK(virNodeDeviceReAttachFlags(dev, NULL, 0) == 0, "ReAttachFlags(NULL)");
    CHECK(driver_is(conn, "pci_0000_04_10_2", "igbvf"), "back on igbvf");
    CHECK(virNodeDeviceDetachFlags(dev, NULL, 0) == 0, "DetachFlags(NULL)");
    CHECK(driver_is(conn, "pci_0000_04_10_2", "vfio-pci"), "NULL driver name means vfio");
    CHECK(virNodeDeviceReAttach(dev) == 0, "reattach");
    virNodeDeviceFree(dev);
}

static void named_driver(virConnectPtr conn)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "pci_0000_03_02_0");
    CHECK(dev != NULL, "lookup 03:02.0");
    if (dev == NULL)
        return;
    CHECK(virNodeDeviceDetachFlags(dev, "kvm", 0) == 0, "detach 03:02.0 to kvm");
    CHECK(driver_is(conn, "pci_0000_03_02_0", "pci-stub"), "on pci-stub");
    /* A stub is not a host driver. */
    CHECK(virNodeDeviceReAttachFlags(dev, "vfio-pci", 0) == -1, "reattach to a stub refused");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "stub", "reattach to vfio-pci");
    CHECK(virNodeDeviceReAttachFlags(dev, "../../e1000", 0) == -1, "a path is not a driver name");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, NULL, "reattach to a path");
    CHECK(driver_is(conn, "pci_0000_03_02_0", "pci-stub"), "still on pci-stub after refusals");
    CHECK(virNodeDeviceReAttachFlags(dev, "e1000", 0) == 0, "reattach to e1000 by name");
    CHECK(driver_is(conn, "pci_0000_03_02_0", "e1000"), "on e1000");
    virNodeDeviceFree(dev);
}

static void state_rules(virConnectPtr conn)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "pci_0000_04_10_4");
    CHECK(dev != NULL, "lookup 04:10.4");
    if (dev == NULL)
        return;
    /* Already with its host driver and never detached: success, nothing
     * changed (libvirt's reattach skips a device on a non-stub driver). */
    CHECK(virNodeDeviceReAttach(dev) == 0, "reattach of a device on its host driver");
    CHECK(driver_is(conn, "pci_0000_04_10_4", "igbvf"), "still on igbvf");
    CHECK(virNodeDeviceReAttachFlags(dev, "e1000", 0) == -1, "reattach to another host driver");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "not to a stub", "host to host");
    CHECK(virNodeDeviceReAttachFlags(dev, "dccp", 0) == -1, "a name that is no driver");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "nothing was loaded", "dccp refused");
    CHECK(virNodeDeviceDetachFlags(dev, "vfio", 0) == 0, "detach to vfio");
    CHECK(virNodeDeviceDetachFlags(dev, "kvm", 0) == -1, "detach to a second stub");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "reattach it first", "second stub");
    CHECK(driver_is(conn, "pci_0000_04_10_4", "vfio-pci"), "still on vfio-pci");
    CHECK(virNodeDeviceReAttach(dev) == 0, "reattach");
    CHECK(driver_is(conn, "pci_0000_04_10_4", "igbvf"), "back on igbvf");
    virNodeDeviceFree(dev);

    /* A device with no driver and no record: the kernel probes it (no
     * driver claims this one, so it stays driverless), and that is success. */
    dev = virNodeDeviceLookupByName(conn, "pci_0000_05_00_0");
    CHECK(dev != NULL, "lookup 05:00.0");
    if (dev != NULL) {
        CHECK(virNodeDeviceReAttach(dev) == 0, "reattach of a driverless device");
        CHECK(driver_is(conn, "pci_0000_05_00_0", NULL), "still driverless");
        virNodeDeviceFree(dev);
    }
}

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    size_t d, s;
    CHECK(conn != NULL, "virConnectOpen(test:///default)");
    if (conn == NULL)
        return check_summary("detach_reattach");
    for (s = 0; s < sizeof(stubs) / sizeof(stubs[0]); s++)
        for (d = 0; d < sizeof(devices) / sizeof(devices[0]); d++)
            round_trip(conn, &devices[d], stubs[s].name, stubs[s].kernel);
    default_stub(conn);
    named_driver(conn);
    state_rules(conn);
    virConnectClose(conn);
    return check_summary("detach_reattach");
}
