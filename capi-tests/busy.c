/*
 * Busy devices through the C API: on a simulated host whose devices are
 * held through VFIO, reattach and reset of a device a visible process holds
 * are refused at once (VIR_ERR_OPERATION_INVALID, naming the pid and
 * command), and a reattach the kernel keeps waiting for a hidden holder
 * returns within the URI's timeout= with VIR_ERR_OPERATION_TIMEOUT.
 */
#include "check.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char HOST[] =
    "{\"drivers\": [{\"name\": \"igbvf\", \"ids\": [\"8086:10ca\"]}, {\"name\": \"vfio-pci\"}],\n"
    " \"devices\": [\n"
    "  {\"address\": \"0000:04:10.0\", \"vendor\": \"0x8086\", \"device\": \"0x10ca\", \"class\": \"0x020000\",\n"
    "   \"driver\": \"vfio-pci\", \"iommu_group\": 12, \"reset_method\": [\"flr\"]},\n"
    "  {\"address\": \"0000:04:10.2\", \"vendor\": \"0x8086\", \"device\": \"0x10ca\", \"class\": \"0x020000\",\n"
    "   \"driver\": \"vfio-pci\", \"iommu_group\": 13}],\n"
    " \"vfio_holders\": [\n"
    "  {\"pid\": 4242, \"comm\": \"qemu-system-x86\", \"device\": \"0000:04:10.0\", \"holds\": \"device\"},\n"
    "  {\"pid\": 77, \"comm\": \"hidden\", \"device\": \"0000:04:10.2\", \"holds\": \"device\", \"hidden\": true}]}\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    char path[] = "/tmp/nodedev-busy-XXXXXX", uri[128];
    virConnectPtr conn;
    virNodeDevicePtr held, hidden;
    double start, took;
    int fd = mkstemp(path);
    FILE *f;

    CHECK(fd >= 0, "temporary host description");
    if (fd < 0)
        return check_summary("busy");
    f = fdopen(fd, "w");
    fputs(HOST, f);
    fclose(f);
    snprintf(uri, sizeof uri, "test://%s?timeout=1", path);

    conn = virConnectOpen(uri);
    CHECK(conn != NULL, "open %s", uri);
    if (conn == NULL) {
        unlink(path);
        return check_summary("busy");
    }
    held = virNodeDeviceLookupByName(conn, "pci_0000_04_10_0");
    hidden = virNodeDeviceLookupByName(conn, "pci_0000_04_10_2");
    CHECK(held != NULL && hidden != NULL, "lookups");

    if (held != NULL) {
        CHECK(virNodeDeviceReAttach(held) == -1, "reattach of a held device");
        CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV,
                    "0000:04:10.0 is in use by pid 4242 (qemu-system-x86): stop it first", "reattach refused");
        CHECK(virNodeDeviceReset(held) == -1, "reset of a held device");
        CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "pid 4242 (qemu-system-x86)", "reset refused");
        /* No wall-clock bound here (the program also runs under valgrind on a
         * loaded machine): a refusal that had waited on the kernel would end in
         * VIR_ERR_OPERATION_TIMEOUT, not the OPERATION_INVALID checked above. */
        CHECK(driver_is(conn, "pci_0000_04_10_0", "vfio-pci"), "still on vfio-pci");
        virNodeDeviceFree(held);
    }
    if (hidden != NULL) {
        start = now();
        CHECK(virNodeDeviceReAttach(hidden) == -1, "reattach of a device a hidden process holds");
        took = now() - start;
        CHECK_ERROR(VIR_ERR_OPERATION_TIMEOUT, VIR_FROM_NODEDEV, "0000:04:10.2", "reattach timed out");
        CHECK(took >= 0.29 && took < 5.0, "returned within the bound (%.3f s)", took);
        virNodeDeviceFree(hidden);
    }
    CHECK(virConnectClose(conn) == 0, "close");
    unlink(path);
    return check_summary("busy");
}
