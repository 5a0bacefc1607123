/*
 * Node-device events on the real kernel, in the QEMU guest
 * (suite-events.sh), as a libvirt client receives them: written against
 * libvirt's own headers only, linked statically with libnodedev.a.
 * Usage: libvirt_events PF NIC NICDRIVER (the igb PF with no VFs, a device
 * on NICDRIVER). Another "tool" (a shell, through system()) makes VFs,
 * removes them and unbinds/binds NIC with echo, from a thread of its own;
 * the callbacks must come through virEventRunDefaultImpl on the main
 * thread, all within 1 s of the write's return. Prints NODEDEV-TEST lines
 * and the delivery latency: a bare netlink listener thread of this program
 * notes when each PCI uevent arrives; each callback is matched to its
 * uevent (device and action) and the difference is nodedev's part (wake-up,
 * read, parse, dispatch through the loop).
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NVFS 3
#define BOUND_MS 1000.0
#define GUARD_MS 10000
#define MAXREC 64

/* A PCI uevent as the bare listener saw it, or a callback. */
struct rec {
    char name[32];  /* 0000:00:00.0 */
    char action[8]; /* add remove bind unbind; for a callback: created deleted update */
    double t;
    int used;
};
static struct rec refs[MAXREC], cbs[MAXREC];
static int nrefs, ncbs;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static double lat[MAXREC];
static int nlat;

static const char *pf, *nic, *nic_driver;
static char nic_name[64];
static pthread_t loop_thread;
static int created, deleted, nic_updates, off_thread, timed_out;
static double t_action, worst_ms, sum_ms;
static int samples;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void result(const char *name, int ok, const char *why)
{
    if (ok)
        printf("NODEDEV-TEST PASS events-c-%s\n", name);
    else
        printf("NODEDEV-TEST FAIL events-c-%s: %s (last error: %s)\n", name, why, virGetLastErrorMessage());
}

static double t_last_cb;
static void sample(virNodeDevicePtr dev, const char *kind)
{
    /* pci_0000_04_10_0 -> 0000:04:10.0 */
    const char *n = virNodeDeviceGetName(dev);
    double t = now_ms(), d = t - t_action;
    t_last_cb = t;
    if (d > worst_ms)
        worst_ms = d;
    sum_ms += d;
    samples++;
    pthread_mutex_lock(&rec_lock);
    if (ncbs < MAXREC && strlen(n) == 16) {
        snprintf(cbs[ncbs].name, sizeof cbs[ncbs].name, "%.4s:%.2s:%.2s.%.1s", n + 4, n + 9, n + 12, n + 15);
        snprintf(cbs[ncbs].action, sizeof cbs[ncbs].action, "%s", kind);
        cbs[ncbs++].t = t;
    }
    pthread_mutex_unlock(&rec_lock);
}

/* The bare listener: every kernel uevent of a PCI function, timed on arrival. */
static void *listener(void *arg)
{
    int fd = *(int *)arg;
    char buf[8192];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        double t = now_ms();
        char *at, *name;
        if (n <= 0)
            continue;
        buf[n] = 0;
        at = strchr(buf, '@');
        if (!at)
            continue;
        {
            int pci = 0;
            char *p = buf + strlen(buf) + 1;
            while (p < buf + n) {
                if (strcmp(p, "SUBSYSTEM=pci") == 0)
                    pci = 1;
                p += strlen(p) + 1;
            }
            if (!pci)
                continue;
        }
        *at = 0;
        name = strrchr(at + 1, '/');
        pthread_mutex_lock(&rec_lock);
        if (name && nrefs < MAXREC) {
            snprintf(refs[nrefs].name, sizeof refs[nrefs].name, "%s", name + 1);
            snprintf(refs[nrefs].action, sizeof refs[nrefs].action, "%s", buf);
            refs[nrefs++].t = t;
        }
        pthread_mutex_unlock(&rec_lock);
    }
    return NULL;
}

static int matches(const char *cb, const char *action)
{
    if (strcmp(cb, "created") == 0)
        return strcmp(action, "add") == 0;
    if (strcmp(cb, "deleted") == 0)
        return strcmp(action, "remove") == 0;
    return strcmp(action, "bind") == 0 || strcmp(action, "unbind") == 0;
}

/* Each callback against the first unused uevent of its device and kind. */
static void match_latencies(void)
{
    int i, j;
    for (i = 0; i < ncbs; i++)
        for (j = 0; j < nrefs; j++)
            if (!refs[j].used && strcmp(refs[j].name, cbs[i].name) == 0 && matches(cbs[i].action, refs[j].action)) {
                refs[j].used = 1;
                lat[nlat++] = cbs[i].t > refs[j].t ? cbs[i].t - refs[j].t : 0.0;
                break;
            }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int nic_net_created, nic_net_deleted;

static void on_lifecycle(virConnectPtr conn, virNodeDevicePtr dev, int event, int detail, void *opaque)
{
    const char *parent;
    (void)conn; (void)detail; (void)opaque;
    if (!pthread_equal(pthread_self(), loop_thread))
        off_thread++;
    if (strncmp(virNodeDeviceGetName(dev), "net_", 4) == 0) {
        /* A network interface (the NIC's, or a VF's under igbvf): counted apart. */
        parent = virNodeDeviceGetParent(dev);
        if (parent != NULL && strcmp(parent, nic_name) == 0) {
            if (event == VIR_NODE_DEVICE_EVENT_CREATED)
                nic_net_created++;
            if (event == VIR_NODE_DEVICE_EVENT_DELETED)
                nic_net_deleted++;
        }
        return;
    }
    if (event == VIR_NODE_DEVICE_EVENT_CREATED)
        created++;
    if (event == VIR_NODE_DEVICE_EVENT_DELETED)
        deleted++;
    sample(dev, event == VIR_NODE_DEVICE_EVENT_CREATED ? "created" : "deleted");
}

static void on_update(virConnectPtr conn, virNodeDevicePtr dev, void *opaque)
{
    (void)conn; (void)opaque;
    if (!pthread_equal(pthread_self(), loop_thread))
        off_thread++;
    if (strcmp(virNodeDeviceGetName(dev), nic_name) == 0) {
        nic_updates++;
        sample(dev, "update");
    }
}

static void on_timeout(int timer, void *opaque)
{
    (void)timer; (void)opaque;
    timed_out = 1;
}

/* The other tool: one shell command, timed from just before it runs. */
static char *pending;
static volatile double t_done;
static void *shell(void *arg)
{
    (void)arg;
    t_action = now_ms();
    if (system(pending) != 0)
        fprintf(stderr, "libvirt_events: '%s' failed\n", pending);
    t_done = now_ms();
    return NULL;
}

/* Run `cmd` in another thread and the loop here until *counter reaches
 * want or GUARD_MS pass; returns how long after the write returned the
 * last callback came (0 if before). */
static double act_and_wait(const char *cmd, int *counter, int want)
{
    pthread_t th;
    char buf[512];
    double start;
    int t;
    snprintf(buf, sizeof buf, "%s", cmd);
    pending = buf;
    timed_out = 0;
    t = virEventAddTimeout(GUARD_MS, on_timeout, NULL, NULL);
    start = now_ms();
    (void)start;
    t_done = 0;
    pthread_create(&th, NULL, shell, NULL);
    while (*counter < want && !timed_out)
        if (virEventRunDefaultImpl() < 0)
            break;
    virEventRemoveTimeout(t);
    pthread_join(th, NULL);
    return t_last_cb > t_done ? t_last_cb - t_done : 0.0;
}

static long ctxt_switches(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    virConnectPtr conn;
    char cmd[512], why[256];
    int life, upd, t;
    long before, after;
    double ms;

    if (argc != 4) {
        fprintf(stderr, "usage: libvirt_events PF NIC NICDRIVER\n");
        return 2;
    }
    pf = argv[1]; nic = argv[2]; nic_driver = argv[3];
    snprintf(nic_name, sizeof nic_name, "pci_%.4s_%.2s_%.2s_%.1s", nic, nic + 5, nic + 8, nic + 11);
    loop_thread = pthread_self();
    {
        static int nl;
        struct sockaddr_nl a;
        pthread_t lt;
        nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
        memset(&a, 0, sizeof a);
        a.nl_family = AF_NETLINK;
        a.nl_groups = 1;
        if (nl < 0 || bind(nl, (struct sockaddr *)&a, sizeof a) < 0 || pthread_create(&lt, NULL, listener, &nl) != 0)
            fprintf(stderr, "libvirt_events: no reference listener: latency not measured\n");
    }

    conn = virConnectOpen("nodedev:///system");
    result("open", conn != NULL, "virConnectOpen");
    if (!conn)
        return 1;
    life = virConnectNodeDeviceEventRegisterAny(conn, NULL, VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE,
                                                VIR_NODE_DEVICE_EVENT_CALLBACK(on_lifecycle), NULL, NULL);
    result("no-loop-refused", life == -1 && virGetLastErrorCode() == VIR_ERR_INTERNAL_ERROR, "expected INTERNAL_ERROR");
    result("default-loop", virEventRegisterDefaultImpl() == 0, "virEventRegisterDefaultImpl");
    life = virConnectNodeDeviceEventRegisterAny(conn, NULL, VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE,
                                                VIR_NODE_DEVICE_EVENT_CALLBACK(on_lifecycle), NULL, NULL);
    upd = virConnectNodeDeviceEventRegisterAny(conn, NULL, VIR_NODE_DEVICE_EVENT_ID_UPDATE,
                                               VIR_NODE_DEVICE_EVENT_CALLBACK(on_update), NULL, NULL);
    result("register", life >= 0 && upd >= 0, "virConnectNodeDeviceEventRegisterAny");

    /* Idle: 2 s with callbacks registered and nothing happening: one
     * iteration (the guard timer), about no context switch. */
    before = ctxt_switches();
    timed_out = 0;
    t = virEventAddTimeout(2000, on_timeout, NULL, NULL);
    int iterations = 0;
    while (!timed_out) {
        virEventRunDefaultImpl();
        iterations++;
    }
    virEventRemoveTimeout(t);
    after = ctxt_switches();
    snprintf(why, sizeof why, "%d iterations, %ld voluntary context switches in 2 s", iterations, after - before);
    result("idle-no-wakeups", iterations == 1 && after - before <= 2 && created + deleted + nic_updates == 0, why);
    printf("NODEDEV-NOTE events-idle: %s\n", why);

    snprintf(cmd, sizeof cmd, "echo %d > /sys/bus/pci/devices/%s/sriov_numvfs", NVFS, pf);
    ms = act_and_wait(cmd, &created, NVFS);
    snprintf(why, sizeof why, "%d CREATED, last %.0f ms after the write returned (want %d within %.0f)", created, ms, NVFS, BOUND_MS);
    result("vfs-created", created == NVFS && ms < BOUND_MS, why);
    snprintf(cmd, sizeof cmd, "echo 0 > /sys/bus/pci/devices/%s/sriov_numvfs", pf);
    ms = act_and_wait(cmd, &deleted, NVFS);
    snprintf(why, sizeof why, "%d DELETED, last %.0f ms after the write returned (want %d within %.0f)", deleted, ms, NVFS, BOUND_MS);
    result("vfs-deleted", deleted == NVFS && ms < BOUND_MS, why);

    snprintf(cmd, sizeof cmd, "echo %s > /sys/bus/pci/drivers/%s/unbind", nic, nic_driver);
    ms = act_and_wait(cmd, &nic_updates, 1);
    snprintf(why, sizeof why, "%d UPDATE, %.0f ms after the write returned", nic_updates, ms);
    result("unbind-update", nic_updates == 1 && ms < BOUND_MS, why);
    snprintf(why, sizeof why, "%d DELETED of the NIC's interface", nic_net_deleted);
    result("unbind-net-deleted", nic_net_deleted == 1, why);
    snprintf(cmd, sizeof cmd, "echo %s > /sys/bus/pci/drivers/%s/bind", nic, nic_driver);
    ms = act_and_wait(cmd, &nic_updates, 2);
    snprintf(why, sizeof why, "%d UPDATE, %.0f ms after the write returned", nic_updates, ms);
    result("bind-update", nic_updates == 2 && ms < BOUND_MS, why);
    snprintf(why, sizeof why, "%d CREATED of the NIC's interface", nic_net_created);
    result("bind-net-created", nic_net_created == 1, why);

    result("on-loop-thread", off_thread == 0, "a callback ran on another thread");
    printf("NODEDEV-NOTE events-end-to-end: %d callbacks, shell command start to callback mean %.2f ms, worst %.2f ms\n",
           samples, samples ? sum_ms / samples : 0.0, worst_ms);
    pthread_mutex_lock(&rec_lock);
    match_latencies();
    pthread_mutex_unlock(&rec_lock);
    qsort(lat, nlat, sizeof lat[0], cmp_double);
    if (nlat > 0)
        printf("NODEDEV-NOTE events-latency: %d callbacks matched to their uevent; uevent arrival (bare netlink listener) "
               "to callback: median %.3f ms, max %.3f ms\n", nlat, lat[nlat / 2], lat[nlat - 1]);
    result("latency-measured", nlat == samples, "not every callback matched a uevent");
    virConnectNodeDeviceEventDeregisterAny(conn, life);
    virConnectNodeDeviceEventDeregisterAny(conn, upd);
    virConnectClose(conn);
    return 0;
}
