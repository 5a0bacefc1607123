/* The floor of a driver change: only the sysfs writes the kernel needs, and
 * a look at the driver link to know it worked. No records, no checks, no
 * rollback: what nodedev and its peers are measured against.
 *
 *   sysfs_floor [-j] [-r] detach DRIVER DEV...    override DRIVER, unbind, probe
 *   sysfs_floor [-j] [-r] reattach DRIVER DEV...  clear override, unbind, probe
 *   sysfs_floor loop N ORIG DEV              N round trips to vfio-pci and
 *                                            back to ORIG, in this process
 *
 * Each device must end on DRIVER (its `driver` link), else exit 1. -j: one
 * thread per device, all at once. -r: also write the device's `reset` file
 * (after detach, before reattach), as a managed prepare and release do.
 * `loop` does one untimed round trip first, then prints
 * `NODEDEV-BENCH floor-inproc detach|reattach DEV NS` per step.
 * Only ever run inside the disposable benchmark guest. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define DEVICES "/sys/bus/pci/devices/"

struct job {
    const char *dev;
    const char *driver;
    int detach; /* 1: to DRIVER through the override; 0: clear it */
    int reset;
    int rc;
};

static int put(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = write(fd, value, strlen(value));
    n = n < 0 ? -errno : 0;
    close(fd);
    return (int)n;
}

static int reset(const char *dev)
{
    char path[PATH_MAX];
    int rc;

    snprintf(path, sizeof path, DEVICES "%s/reset", dev);
    if ((rc = put(path, "1")) < 0)
        fprintf(stderr, "%s: reset: %s\n", dev, strerror(-rc));
    return rc < 0;
}

static int change(const char *dev, const char *driver, int detach)
{
    char path[PATH_MAX], link[PATH_MAX];
    const char *now;
    ssize_t n;
    int rc;

    snprintf(path, sizeof path, DEVICES "%s/driver_override", dev);
    /* "\n" clears the override (an empty write is refused). */
    if ((rc = put(path, detach ? driver : "\n")) < 0) {
        fprintf(stderr, "%s: driver_override: %s\n", dev, strerror(-rc));
        return 1;
    }
    snprintf(path, sizeof path, DEVICES "%s/driver/unbind", dev);
    if ((rc = put(path, dev)) < 0 && rc != -ENOENT) { /* ENOENT: no driver */
        fprintf(stderr, "%s: unbind: %s\n", dev, strerror(-rc));
        return 1;
    }
    if ((rc = put("/sys/bus/pci/drivers_probe", dev)) < 0) {
        fprintf(stderr, "%s: drivers_probe: %s\n", dev, strerror(-rc));
        return 1;
    }
    snprintf(path, sizeof path, DEVICES "%s/driver", dev);
    n = readlink(path, link, sizeof link - 1);
    link[n < 0 ? 0 : n] = '\0';
    now = strrchr(link, '/') ? strrchr(link, '/') + 1 : "none";
    if (strcmp(now, driver) != 0) {
        fprintf(stderr, "%s: on %s, expected %s\n", dev, now, driver);
        return 1;
    }
    return 0;
}

static void *run_job(void *arg)
{
    struct job *j = arg;
    if (j->detach)
        j->rc = change(j->dev, j->driver, 1) || (j->reset && reset(j->dev));
    else
        j->rc = (j->reset && reset(j->dev)) || change(j->dev, j->driver, 0);
    return NULL;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int loop(int rounds, const char *orig, const char *dev)
{
    int i;

    for (i = 0; i <= rounds; i++) {
        long long t0 = now_ns(), t1, t2;
        if (change(dev, "vfio-pci", 1))
            return 1;
        t1 = now_ns();
        if (change(dev, orig, 0))
            return 1;
        t2 = now_ns();
        if (i > 0) { /* round 0 warms up */
            printf("NODEDEV-BENCH floor-inproc detach %s %lld\n", dev, t1 - t0);
            printf("NODEDEV-BENCH floor-inproc reattach %s %lld\n", dev, t2 - t1);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int parallel = 0, with_reset = 0, n, i, rc = 0;
    struct job *jobs;
    pthread_t *threads;

    if (argc == 5 && strcmp(argv[1], "loop") == 0)
        return loop(atoi(argv[2]), argv[3], argv[4]);
    for (; argc > 1 && argv[1][0] == '-'; argv++, argc--) {
        parallel |= strcmp(argv[1], "-j") == 0;
        with_reset |= strcmp(argv[1], "-r") == 0;
    }
    if (argc < 4 || (strcmp(argv[1], "detach") != 0 && strcmp(argv[1], "reattach") != 0)) {
        fprintf(stderr, "usage: sysfs_floor [-j] [-r] detach|reattach DRIVER DEV...\n"
                        "       sysfs_floor loop N ORIG DEV\n");
        return 2;
    }
    n = argc - 3;
    jobs = calloc(n, sizeof *jobs);
    threads = calloc(n, sizeof *threads);
    for (i = 0; i < n; i++) {
        jobs[i] = (struct job){ argv[3 + i], argv[2], strcmp(argv[1], "detach") == 0, with_reset, 0 };
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
    return rc;
}
