/*
 * Node-device events on the real kernel, in the QEMU guest
 * (suite-events.sh), as a libvirt client receives them: written against
 * libvirt's own headers only, linked statically with libnodedev.a.
 * Usage: libvirt_events PF NIC NICDRIVER (the igb PF with no VFs, a device
 * on NICDRIVER). Another "tool" (a shell, through system()) makes VFs,
 * removes them and unbinds/binds NIC with echo, from a thread of its own;
 * the callbacks must come through virEventRunDefaultImpl on the main
 * thread, each within a bound. Prints NODEDEV-TEST lines and the latency
 * from the write that makes the kernel send its uevent to the callback.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NVFS 3
#define BOUND_MS 2000.0

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

static void sample(void)
{
    double d = now_ms() - t_action;
    if (d > worst_ms)
        worst_ms = d;
    sum_ms += d;
    samples++;
}

static void on_lifecycle(virConnectPtr conn, virNodeDevicePtr dev, int event, int detail, void *opaque)
{
    (void)conn; (void)dev; (void)detail; (void)opaque;
    if (!pthread_equal(pthread_self(), loop_thread))
        off_thread++;
    if (event == VIR_NODE_DEVICE_EVENT_CREATED)
        created++;
    if (event == VIR_NODE_DEVICE_EVENT_DELETED)
        deleted++;
    sample();
}

static void on_update(virConnectPtr conn, virNodeDevicePtr dev, void *opaque)
{
    (void)conn; (void)opaque;
    if (!pthread_equal(pthread_self(), loop_thread))
        off_thread++;
    if (strcmp(virNodeDeviceGetName(dev), nic_name) == 0) {
        nic_updates++;
        sample();
    }
}

static void on_timeout(int timer, void *opaque)
{
    (void)timer; (void)opaque;
    timed_out = 1;
}

/* The other tool: one shell command, timed from just before it runs. */
static char *pending;
static void *shell(void *arg)
{
    (void)arg;
    t_action = now_ms();
    if (system(pending) != 0)
        fprintf(stderr, "libvirt_events: '%s' failed\n", pending);
    return NULL;
}

/* Run `cmd` in another thread and the loop here until *counter reaches
 * want or BOUND_MS pass; returns the elapsed ms. */
static double act_and_wait(const char *cmd, int *counter, int want)
{
    pthread_t th;
    char buf[512];
    double start;
    int t;
    snprintf(buf, sizeof buf, "%s", cmd);
    pending = buf;
    timed_out = 0;
    t = virEventAddTimeout((int)BOUND_MS, on_timeout, NULL, NULL);
    start = now_ms();
    pthread_create(&th, NULL, shell, NULL);
    while (*counter < want && !timed_out)
        if (virEventRunDefaultImpl() < 0)
            break;
    virEventRemoveTimeout(t);
    pthread_join(th, NULL);
    return now_ms() - start;
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
    snprintf(why, sizeof why, "%d CREATED in %.0f ms (want %d)", created, ms, NVFS);
    result("vfs-created", created == NVFS && ms < BOUND_MS, why);
    snprintf(cmd, sizeof cmd, "echo 0 > /sys/bus/pci/devices/%s/sriov_numvfs", pf);
    ms = act_and_wait(cmd, &deleted, NVFS);
    snprintf(why, sizeof why, "%d DELETED in %.0f ms (want %d)", deleted, ms, NVFS);
    result("vfs-deleted", deleted == NVFS && ms < BOUND_MS, why);

    snprintf(cmd, sizeof cmd, "echo %s > /sys/bus/pci/drivers/%s/unbind", nic, nic_driver);
    ms = act_and_wait(cmd, &nic_updates, 1);
    snprintf(why, sizeof why, "%d UPDATE in %.0f ms", nic_updates, ms);
    result("unbind-update", nic_updates == 1 && ms < BOUND_MS, why);
    snprintf(cmd, sizeof cmd, "echo %s > /sys/bus/pci/drivers/%s/bind", nic, nic_driver);
    ms = act_and_wait(cmd, &nic_updates, 2);
    snprintf(why, sizeof why, "%d UPDATE in %.0f ms", nic_updates, ms);
    result("bind-update", nic_updates == 2 && ms < BOUND_MS, why);

    result("on-loop-thread", off_thread == 0, "a callback ran on another thread");
    printf("NODEDEV-NOTE events-latency: %d callbacks, shell write start to callback mean %.2f ms, worst %.2f ms\n",
           samples, samples ? sum_ms / samples : 0.0, worst_ms);
    virConnectNodeDeviceEventDeregisterAny(conn, life);
    virConnectNodeDeviceEventDeregisterAny(conn, upd);
    virConnectClose(conn);
    return 0;
}
