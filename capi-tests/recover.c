/*
 * virNodeDeviceRecover: opening a connection recovers nothing; a record left
 * mid-operation by a dead process blocks its device until recover runs,
 * which obeys read-only, lockdown and the authorization callback
 * (VIR_NODE_DEVICE_OP_RECOVER); an unusable record is kept, reported by
 * every call and protects its device until an administrator removes it;
 * bad input.
 */
#include "check.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void free_report(char **report)
{
    char **p;
    for (p = report; p != NULL && *p != NULL; p++)
        free(*p);
    free(report);
}

static int asked_op, asked_times, allow;
static char asked_device[64];

static char asked_driver[64];

static int auth(virConnectPtr conn, enum virNodeDeviceOperation op, const char *device, const char *owner,
                const char *driver, void *opaque)
{
    (void)conn;
    (void)owner;
    (void)opaque;
    asked_op = op;
    snprintf(asked_driver, sizeof asked_driver, "%s", driver ? driver : "(null)");
    asked_times++;
    snprintf(asked_device, sizeof asked_device, "%s", device);
    return allow;
}

/* One call; its only line must contain `needle`. */
static void expect_one(virConnectPtr conn, const char *needle, const char *what)
{
    char **report = NULL;
    int n = virNodeDeviceRecover(conn, &report, 0);
    CHECK(n == 1 && report != NULL && report[0] != NULL && strstr(report[0], needle) != NULL && report[1] == NULL,
          "%s: %d line(s), first: %s", what, n, report && report[0] ? report[0] : "(none)");
    free_report(report);
}

int main(void)
{
    char dir[] = "/tmp/nodedev-recover-XXXXXX", uri[160], rec[192], bad[192];
    virConnectPtr conn;
    virNodeDevicePtr vf, vf2;

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(rec, sizeof rec, "%s/0000:04:10.0.json", dir);
    snprintf(bad, sizeof bad, "%s/0000:04:10.2.json", dir);

    /* A detach that died after writing its intent: the VF is still on igbvf. */
    write_file(rec, "{\"address\": \"0000:04:10.0\", \"original_driver\": \"igbvf\", \"stub\": \"vfio-pci\","
                    " \"owner\": null, \"managed\": false, \"step\": \"detaching\", \"updated\": 0}\n", 0600);

    /* A read-only connection leaves it alone and says so. */
    snprintf(uri, sizeof uri, "test:///default?statedir=%s", dir);
    conn = virConnectOpenReadOnly(uri);
    CHECK(conn != NULL, "read-only open");
    expect_one(conn, "read-only", "read-only connection");
    CHECK(exists(rec), "read-only kept the record");
    virConnectClose(conn);

    /* A locked-down connection neither recovers at open nor when asked. */
    snprintf(uri, sizeof uri, "test:///default?statedir=%s&lockdown=1", dir);
    conn = virConnectOpen(uri);
    CHECK(conn != NULL, "lockdown open");
    CHECK(exists(rec), "lockdown: open kept the record");
    expect_one(conn, "lockdown", "locked-down connection");
    CHECK(exists(rec), "lockdown kept the record");
    virConnectClose(conn);

    /* Read-write: opening changes nothing, the device is blocked until recover. */
    snprintf(uri, sizeof uri, "test:///default?statedir=%s", dir);
    conn = virConnectOpen(uri);
    CHECK(conn != NULL, "open");
    CHECK(exists(rec), "open kept the record");
    vf = virNodeDeviceLookupByName(conn, "pci_0000_04_10_0");
    CHECK(vf != NULL, "lookup");
    CHECK(virNodeDeviceDetachFlags(vf, "vfio", 0) == -1, "detach refused before recover");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "nodedev recover", "half-done record");
    CHECK(driver_is(conn, "pci_0000_04_10_0", "igbvf"), "still on igbvf");

    /* The callback is asked with OP_RECOVER; a denial keeps the record. */
    CHECK(virConnectSetNodeDeviceAuthCallback(conn, auth, NULL, NULL) == 0, "register callback");
    allow = 0;
    expect_one(conn, "denied", "denied recovery");
    CHECK(asked_op == VIR_NODE_DEVICE_OP_RECOVER && strcmp(asked_device, "pci_0000_04_10_0") == 0 &&
              strcmp(asked_driver, "igbvf") == 0,
          "asked op %d for %s, driver %s", asked_op, asked_device, asked_driver);
    CHECK(exists(rec), "denied: record kept");
    allow = 1;
    asked_times = 0;
    expect_one(conn, "rolled back to igbvf", "allowed recovery");
    CHECK(asked_times == 1, "asked once (%d)", asked_times);
    CHECK(!exists(rec), "the record is gone");
    CHECK(driver_is(conn, "pci_0000_04_10_0", "igbvf"), "the VF is on igbvf");
    CHECK(virNodeDeviceRecover(conn, NULL, 0) == 0, "nothing more to recover");

    /* An unusable record: kept, reported by every call, its device protected. */
    write_file(bad, "{\"address\": \"0000:04:1", 0600);
    expect_one(conn, "--clear", "corrupt record");
    expect_one(conn, "cannot be used", "corrupt record, again");
    CHECK(exists(bad), "kept in place");
    vf2 = virNodeDeviceLookupByName(conn, "pci_0000_04_10_2");
    CHECK(vf2 != NULL, "lookup");
    CHECK(virNodeDeviceDetachFlags(vf2, "vfio", 0) == -1, "detach of a protected device");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "0000:04:10.2.json", "protected device");
    /* A record file others may read is not trusted either. */
    write_file(bad, "{\"address\": \"0000:04:10.2\", \"original_driver\": \"igbvf\", \"stub\": \"vfio-pci\","
                    " \"owner\": null, \"managed\": false, \"step\": \"detached\", \"updated\": 0}\n", 0644);
    expect_one(conn, "chmod 600", "record of mode 644");
    /* The administrator removes it after checking the device. */
    CHECK(unlink(bad) == 0, "remove");
    CHECK(virNodeDeviceRecover(conn, NULL, 0) == 0, "nothing left to report");
    CHECK(virNodeDeviceDetachFlags(vf2, "vfio", 0) == 0 && virNodeDeviceReAttach(vf2) == 0, "usable again");
    virNodeDeviceFree(vf);
    virNodeDeviceFree(vf2);

    CHECK(virNodeDeviceRecover(NULL, NULL, 0) == -1, "NULL conn");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, -1, NULL, "NULL conn");
    CHECK(virNodeDeviceRecover(conn, NULL, 1) == -1, "unknown flags");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "flags", "flags");
    virConnectClose(conn);
    snprintf(rec, sizeof rec, "rm -rf '%s'", dir);
    CHECK(system(rec) == 0, "cleanup");
    return check_summary("recover");
}
