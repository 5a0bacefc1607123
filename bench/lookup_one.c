/* One device by name: virNodeDeviceLookupByName + virNodeDeviceGetXMLDesc
 * against the raw reads its XML needs, in one process, alternating batches
 * so that both see the same machine load.
 *
 *   lookup_one [-r ROUNDS] [-b BATCH] ADDR [URI]
 *
 * The raw reads (floor): readlink of bus/pci/devices/ADDR (path, parent),
 * uevent (driver, ids, class), the iommu_group link and a listing of the
 * group's devices, numa_node, the physfn link, sriov_totalvfs (and for a PF
 * sriov_numvfs and its virtfnN links), whether mdev_supported_types exists
 * (an mdev parent), config (bridge type, PCI Express link) and vpd when
 * config lists the VPD capability (the kernel shows the file only then):
 * plain open/read/close, readlink, getdents64, the fewest syscalls, no
 * parsing beyond the capability list, no XML. Names are not looked up in
 * the floor (nodedev remembers them after the first call).
 *
 * Prints the first call (cold: it opens pci.ids), the median time per
 * operation of each, and the median of the per-round ratios. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "nodedev.h"

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0)
        return -1;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return (int)n;
}

static int list_dir(const char *path)
{
    char buf[8192];
    long n;
    int count = 0, fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
        count += (int)n;
    close(fd);
    return count;
}

static volatile long sink;

/* Whether a full config space lists the VPD capability (id 3); -1 when the
 * list cannot be read. */
static int has_vpd_cap(const unsigned char *c, int len)
{
    int at, ttl;
    if (len < 0x40)
        return -1;
    if (!(c[0x06] & 0x10))
        return 0;
    at = c[(c[0x0e] & 0x7f) == 2 ? 0x14 : 0x34] & 0xfc;
    for (ttl = 0; ttl < 48 && at >= 0x40; ttl++) {
        if (at + 1 >= len)
            return -1;
        if (c[at] == 0xff)
            return 0;
        if (c[at] == 0x03)
            return 1;
        at = c[at + 1] & 0xfc;
    }
    return 0;
}

static void raw_reads(const char *addr)
{
    char dir[PATH_MAX], path[PATH_MAX + 64], buf[4096], link[PATH_MAX];
    ssize_t n;
    long total;
    snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", addr);
    sink += readlink(dir, link, sizeof(link));
    snprintf(path, sizeof(path), "%s/uevent", dir);
    sink += read_small(path, buf, sizeof(buf));
    snprintf(path, sizeof(path), "%s/iommu_group", dir);
    if ((n = readlink(path, link, sizeof(link) - 1)) > 0) {
        link[n] = 0;
        snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/devices", strrchr(link, '/') + 1);
        sink += list_dir(path);
    }
    snprintf(path, sizeof(path), "%s/numa_node", dir);
    sink += read_small(path, buf, sizeof(buf));
    snprintf(path, sizeof(path), "%s/physfn", dir);
    sink += readlink(path, link, sizeof(link));
    snprintf(path, sizeof(path), "%s/sriov_totalvfs", dir);
    total = read_small(path, buf, sizeof(buf)) > 0 ? atol(buf) : 0;
    if (total > 0) {
        long vfs, i;
        snprintf(path, sizeof(path), "%s/sriov_numvfs", dir);
        vfs = read_small(path, buf, sizeof(buf)) > 0 ? atol(buf) : 0;
        for (i = 0; i < vfs; i++) {
            snprintf(path, sizeof(path), "%s/virtfn%ld", dir, i);
            sink += readlink(path, link, sizeof(link));
        }
    }
    snprintf(path, sizeof(path), "%s/mdev_supported_types", dir);
    {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            sink += list_dir(path);
            close(fd);
        }
    }
    snprintf(path, sizeof(path), "%s/config", dir);
    {
        unsigned char config[256];
        int fd = open(path, O_RDONLY | O_CLOEXEC), len = -1;
        if (fd >= 0) {
            len = (int)read(fd, config, sizeof(config));
            close(fd);
        }
        if (has_vpd_cap(config, len) != 0) {
            snprintf(path, sizeof(path), "%s/vpd", dir);
            sink += read_small(path, buf, sizeof(buf));
        }
    }
}

static int lookup_xml(virConnectPtr conn, const char *addr)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, addr);
    char *xml;
    if (!dev)
        return -1;
    xml = virNodeDeviceGetXMLDesc(dev, 0);
    virNodeDeviceFree(dev);
    if (!xml)
        return -1;
    sink += (long)strlen(xml);
    free(xml);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int rounds = 21, batch = 200, i, r, opt;
    double t0, first, *ours, *floor_, *ratio;
    virConnectPtr conn;
    const char *addr;

    while ((opt = getopt(argc, argv, "r:b:")) != -1) {
        if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 'b')
            batch = atoi(optarg);
        else
            return 2;
    }
    if (optind >= argc || rounds < 1 || batch < 1) {
        fprintf(stderr, "usage: lookup_one [-r ROUNDS] [-b BATCH] ADDR [URI]\n");
        return 2;
    }
    addr = argv[optind];
    conn = virConnectOpenReadOnly(optind + 1 < argc ? argv[optind + 1] : NULL);
    if (!conn) {
        fprintf(stderr, "open: %s\n", virGetLastErrorMessage());
        return 1;
    }
    t0 = now_ns();
    if (lookup_xml(conn, addr) < 0) {
        fprintf(stderr, "%s: %s\n", addr, virGetLastErrorMessage());
        return 1;
    }
    first = now_ns() - t0;
    ours = calloc(rounds, sizeof(double));
    floor_ = calloc(rounds, sizeof(double));
    ratio = calloc(rounds, sizeof(double));
    for (r = 0; r < rounds; r++) {
        t0 = now_ns();
        for (i = 0; i < batch; i++)
            raw_reads(addr);
        floor_[r] = (now_ns() - t0) / batch;
        t0 = now_ns();
        for (i = 0; i < batch; i++)
            lookup_xml(conn, addr);
        ours[r] = (now_ns() - t0) / batch;
        ratio[r] = ours[r] / floor_[r];
    }
    qsort(ours, rounds, sizeof(double), cmp_double);
    qsort(floor_, rounds, sizeof(double), cmp_double);
    qsort(ratio, rounds, sizeof(double), cmp_double);
    printf("%s first-call-us=%.1f lookup+xml-us=%.2f raw-reads-us=%.2f ratio=%.2f\n", addr, first / 1e3,
           ours[rounds / 2] / 1e3, floor_[rounds / 2] / 1e3, ratio[rounds / 2]);
    virConnectClose(conn);
    return 0;
}
