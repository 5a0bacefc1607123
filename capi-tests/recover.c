/*
 * virNodeDeviceRecover: records left mid-operation by a dead process are
 * finished or rolled back when a connection opens, and reported; corrupt
 * records are moved aside and reported; bad input.
 */
#include "check.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
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

int main(void)
{
    char dir[] = "/tmp/nodedev-recover-XXXXXX", uri[128], rec[192], bad[192];
    char **report = NULL;
    virConnectPtr conn;

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(uri, sizeof uri, "test:///default?statedir=%s", dir);
    snprintf(rec, sizeof rec, "%s/0000:04:10.0.json", dir);
    snprintf(bad, sizeof bad, "%s/0000:04:10.2.json", dir);

    /* A detach that died after writing its intent: the VF is still on igbvf. */
    write_file(rec, "{\"address\": \"0000:04:10.0\", \"original_driver\": \"igbvf\", \"stub\": \"vfio-pci\","
                    " \"owner\": null, \"managed\": false, \"step\": \"detaching\", \"updated\": 0}\n");
    /* A read-only connection leaves it alone and says so. */
    conn = virConnectOpenReadOnly(uri);
    CHECK(conn != NULL, "read-only open");
    CHECK(virNodeDeviceRecover(conn, &report, 0) == 1, "read-only: one record reported");
    CHECK(report != NULL && report[0] != NULL && strstr(report[0], "left alone") != NULL && report[1] == NULL,
          "read-only report: %s", report && report[0] ? report[0] : "(none)");
    free_report(report);
    report = NULL;
    CHECK(exists(rec), "read-only kept the record");
    virConnectClose(conn);

    /* Opening read-write recovers; the call reports what opening did. */
    conn = virConnectOpen(uri);
    CHECK(conn != NULL, "open");
    CHECK(!exists(rec), "the record is gone after open");
    CHECK(virNodeDeviceRecover(conn, &report, 0) == 1, "one record recovered at open");
    CHECK(report != NULL && report[0] != NULL && strstr(report[0], "0000:04:10.0") != NULL &&
              strstr(report[0], "rolled back to igbvf") != NULL,
          "report: %s", report && report[0] ? report[0] : "(none)");
    free_report(report);
    report = NULL;
    CHECK(driver_is(conn, "pci_0000_04_10_0", "igbvf"), "the VF is on igbvf");
    CHECK(virNodeDeviceRecover(conn, NULL, 0) == 0, "nothing more to recover");

    /* A corrupt record: reported and moved aside, never read as a record. */
    write_file(bad, "{\"address\": \"0000:04:1");
    CHECK(virNodeDeviceRecover(conn, &report, 0) == 1, "the corrupt record is reported");
    CHECK(report != NULL && report[0] != NULL && strstr(report[0], "corrupt") != NULL &&
              strstr(report[0], "moved to") != NULL,
          "report: %s", report && report[0] ? report[0] : "(none)");
    free_report(report);
    CHECK(!exists(bad), "moved aside");

    CHECK(virNodeDeviceRecover(NULL, NULL, 0) == -1, "NULL conn");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, -1, NULL, "NULL conn");
    CHECK(virNodeDeviceRecover(conn, NULL, 1) == -1, "unknown flags");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "flags", "flags");
    virConnectClose(conn);
    snprintf(rec, sizeof rec, "rm -rf '%s'", dir);
    CHECK(system(rec) == 0, "cleanup");
    return check_summary("recover");
}
