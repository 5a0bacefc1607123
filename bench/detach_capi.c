/* Detach and reattach through the C API, as a daemon does: one connection,
 * devices looked up by name, then virNodeDeviceDetachFlags(dev, "vfio", 0)
 * and virNodeDeviceReAttach(dev).
 *
 *   detach_capi [-j] [-r] detach|reattach DEV...
 *       -j: one thread per device, all at once, one connection
 *       -r: reset each device too (after detach, before reattach): the work
 *           of managed prepare and release, one call per device
 *   detach_capi prepare|release DEV...
 *       the library's own bulk path: one virNodeDevicePrepare (managed,
 *       owner "bench": detach and reset, a thread per device inside the
 *       library) or one virNodeDeviceRelease
 *   detach_capi [-j] prepare-each|release-each DEV...
 *       a process per device (fork; each opens its own connection) calling
 *       virNodeDevicePrepare (managed, owner "benchN" for the N-th device)
 *       or virNodeDeviceRelease for that device alone, as separate daemons
 *       starting separate guests do; -j: all processes at once, else one
 *       after the other
 *   detach_capi loop N DEV                    N round trips in this process
 *
 * DEV is a PCI address (0000:01:00.0). `loop` does one untimed round trip
 * first, then prints `NODEDEV-BENCH nodedev-capi detach|reattach DEV NS`
 * per step, and checks the kernel's driver link after each step (untimed).
 * Only ever run inside the disposable benchmark guest. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nodedev.h"

struct job {
    virNodeDevicePtr dev;
    const char *addr;
    int detach;
    int reset;
    int rc;
};

static virNodeDevicePtr lookup(virConnectPtr conn, const char *addr)
{
    char name[64];
    virNodeDevicePtr dev;
    char *p;

    /* libvirt's name of 0000:01:00.0 is pci_0000_01_00_0. */
    snprintf(name, sizeof name, "pci_%s", addr);
    for (p = name; *p; p++)
        if (*p == ':' || *p == '.')
            *p = '_';
    dev = virNodeDeviceLookupByName(conn, name);
    if (dev == NULL)
        fprintf(stderr, "%s: %s\n", name, virGetLastErrorMessage());
    return dev;
}

static void *run_job(void *arg)
{
    struct job *j = arg;
    if (j->detach)
        j->rc = virNodeDeviceDetachFlags(j->dev, "vfio", 0) < 0 || (j->reset && virNodeDeviceReset(j->dev) < 0);
    else
        j->rc = (j->reset && virNodeDeviceReset(j->dev) < 0) || virNodeDeviceReAttach(j->dev) < 0;
    if (j->rc)
        fprintf(stderr, "%s: %s\n", j->addr, virGetLastErrorMessage());
    return NULL;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The kernel's word on where the device is; "none" without a driver. */
static const char *driver_of(const char *addr, char *buf, size_t len)
{
    char path[PATH_MAX];
    ssize_t n;

    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver", addr);
    n = readlink(path, buf, len - 1);
    if (n < 0)
        return "none";
    buf[n] = '\0';
    return strrchr(buf, '/') + 1;
}

static int loop(virConnectPtr conn, int rounds, const char *addr)
{
    virNodeDevicePtr dev = lookup(conn, addr);
    char orig[PATH_MAX], now[PATH_MAX];
    const char *o;
    int i;

    if (dev == NULL)
        return 1;
    o = driver_of(addr, orig, sizeof orig);
    for (i = 0; i <= rounds; i++) {
        long long t0, t1, t2, t3;
        t0 = now_ns();
        if (virNodeDeviceDetachFlags(dev, "vfio", 0) < 0)
            goto fail;
        t1 = now_ns();
        if (strcmp(driver_of(addr, now, sizeof now), "vfio-pci") != 0)
            goto wrong;
        t2 = now_ns();
        if (virNodeDeviceReAttach(dev) < 0)
            goto fail;
        t3 = now_ns();
        if (strcmp(driver_of(addr, now, sizeof now), o) != 0)
            goto wrong;
        if (i > 0) /* round 0 warms up */
            printf("NODEDEV-BENCH nodedev-capi detach %s %lld\nNODEDEV-BENCH nodedev-capi reattach %s %lld\n",
                   addr, t1 - t0, addr, t3 - t2);
    }
    virNodeDeviceFree(dev);
    return 0;
fail:
    fprintf(stderr, "%s: %s\n", addr, virGetLastErrorMessage());
    return 1;
wrong:
    fprintf(stderr, "%s: on %s after the call\n", addr, driver_of(addr, now, sizeof now));
    return 1;
}

/* One process's part of prepare-each / release-each: its own connection,
 * its own guest ("benchN"), its one device. Returns the exit status. */
static int one_device(int prepare, int index, const char *addr)
{
    char owner[32];
    virConnectPtr conn = virConnectOpen("nodedev:///system");
    virNodeDevicePtr dev;
    int rc;

    if (conn == NULL) {
        fprintf(stderr, "open: %s\n", virGetLastErrorMessage());
        return 1;
    }
    dev = lookup(conn, addr);
    if (dev == NULL)
        return 1;
    snprintf(owner, sizeof owner, "bench%d", index);
    rc = prepare ? virNodeDevicePrepare(conn, owner, &dev, 1, "vfio", VIR_NODE_DEVICE_PREPARE_MANAGED) < 0
                 : virNodeDeviceRelease(conn, owner, &dev, 1, 0) < 0;
    if (rc)
        fprintf(stderr, "%s %s: %s\n", prepare ? "prepare" : "release", addr, virGetLastErrorMessage());
    virNodeDeviceFree(dev);
    virConnectClose(conn);
    return rc;
}

/* A process per device: all at once (parallel) or one after the other. */
static int each_in_a_process(int prepare, int parallel, int n, char **addrs)
{
    pid_t *pids = calloc(n, sizeof *pids);
    int i, status, rc = 0;

    for (i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            return 1;
        if (pids[i] == 0)
            _exit(one_device(prepare, i, addrs[i]));
        if (!parallel) {
            if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                rc = 1;
        }
    }
    for (i = 0; parallel && i < n; i++)
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = 1;
    free(pids);
    return rc;
}

int main(int argc, char **argv)
{
    int parallel = 0, reset = 0, n, i, rc = 0;
    virConnectPtr conn;
    virNodeDevicePtr *devs;
    struct job *jobs;
    pthread_t *threads;
    const char *op;

    for (; argc > 1 && argv[1][0] == '-'; argv++, argc--) {
        parallel |= strcmp(argv[1], "-j") == 0;
        reset |= strcmp(argv[1], "-r") == 0;
    }
    op = argc > 1 ? argv[1] : "";
    if (argc < 3 || (strcmp(op, "loop") == 0 && argc != 4)
        || (strcmp(op, "loop") != 0 && strcmp(op, "detach") != 0 && strcmp(op, "reattach") != 0
            && strcmp(op, "prepare") != 0 && strcmp(op, "release") != 0 && strcmp(op, "prepare-each") != 0
            && strcmp(op, "release-each") != 0)) {
        fprintf(stderr, "usage: detach_capi [-j] [-r] detach|reattach DEV...\n"
                        "       detach_capi prepare|release DEV...\n"
                        "       detach_capi [-j] prepare-each|release-each DEV...\n"
                        "       detach_capi loop N DEV\n");
        return 2;
    }
    /* Before any connection: the children open their own. */
    if (strcmp(op, "prepare-each") == 0 || strcmp(op, "release-each") == 0)
        return each_in_a_process(strcmp(op, "prepare-each") == 0, parallel, argc - 2, argv + 2);
    conn = virConnectOpen("nodedev:///system");
    if (conn == NULL) {
        fprintf(stderr, "open: %s\n", virGetLastErrorMessage());
        return 1;
    }
    if (strcmp(op, "loop") == 0) {
        rc = loop(conn, atoi(argv[2]), argv[3]);
        virConnectClose(conn);
        return rc;
    }
    n = argc - 2;
    devs = calloc(n, sizeof *devs);
    jobs = calloc(n, sizeof *jobs);
    threads = calloc(n, sizeof *threads);
    /* Lookups first: the bulk operation is the driver changes. */
    for (i = 0; i < n; i++) {
        devs[i] = lookup(conn, argv[2 + i]);
        if (devs[i] == NULL)
            return 1;
        jobs[i] = (struct job){ devs[i], argv[2 + i], strcmp(op, "detach") == 0, reset, 0 };
    }
    if (strcmp(op, "prepare") == 0 || strcmp(op, "release") == 0) {
        rc = strcmp(op, "prepare") == 0
            ? virNodeDevicePrepare(conn, "bench", devs, n, "vfio", VIR_NODE_DEVICE_PREPARE_MANAGED) < 0
            : virNodeDeviceRelease(conn, "bench", devs, n, 0) < 0;
        if (rc)
            fprintf(stderr, "%s: %s\n", op, virGetLastErrorMessage());
        n = 0; /* no jobs */
    }
    for (i = 0; i < n; i++) {
        if (!parallel)
            run_job(&jobs[i]);
        else if (pthread_create(&threads[i], NULL, run_job, &jobs[i]) != 0)
            return 1;
    }
    for (i = 0; i < n; i++) {
        if (parallel)
            pthread_join(threads[i], NULL);
        rc |= jobs[i].rc;
    }
    for (i = 0; i < argc - 2; i++)
        virNodeDeviceFree(devs[i]);
    virConnectClose(conn);
    return rc;
}
