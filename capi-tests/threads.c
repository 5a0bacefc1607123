/*
 * Threads: the last error is per thread (two threads make different errors
 * in lock step and each reads its own), and handles are shared safely
 * (one connection and one device used from several threads at once, with
 * references taken and dropped concurrently).
 */
#include <pthread.h>

#include "check.h"

/* Rounds per thread; tests/capi.rs lowers it under valgrind. */
static int rounds = 200;

static virConnectPtr conn;
static pthread_barrier_t barrier;

struct worker {
    const char *name;   /* what to look up */
    int want_code;      /* the error that lookup gives */
    const char *needle; /* text of that error */
    int bad;            /* rounds where this thread saw a wrong error */
    int rounds;
};

static void *make_errors(void *arg)
{
    struct worker *w = arg;
    int i;
    for (i = 0; i < rounds; i++) {
        virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, w->name);
        /* Both threads have failed before either reads its error. */
        pthread_barrier_wait(&barrier);
        if (dev != NULL || virGetLastErrorCode() != w->want_code ||
            strstr(virGetLastErrorMessage(), w->needle) == NULL)
            w->bad++;
        pthread_barrier_wait(&barrier);
        w->rounds++;
    }
    return NULL;
}

struct sharer {
    virNodeDevicePtr dev;
    int bad;
};

static void *share_device(void *arg)
{
    struct sharer *s = arg;
    int i;
    for (i = 0; i < rounds; i++) {
        char *xml;
        if (virNodeDeviceRef(s->dev) != 0)
            s->bad++;
        xml = virNodeDeviceGetXMLDesc(s->dev, 0);
        if (xml == NULL || strstr(xml, "<name>pci_0000_06_00_0</name>") == NULL)
            s->bad++;
        free(xml);
        if (strcmp(virNodeDeviceGetName(s->dev), "pci_0000_06_00_0") != 0)
            s->bad++;
        if (virNodeDeviceFree(s->dev) != 0)
            s->bad++;
        if (virConnectListAllNodeDevices(conn, NULL, 0) <= 10)
            s->bad++;
        if (virGetLastError() != NULL)
            s->bad++;
    }
    return NULL;
}

int main(void)
{
    struct worker a = {"pci_0000_0f_00_0", VIR_ERR_NO_NODE_DEVICE, "0000:0f:00.0", 0, 0};
    struct worker b = {NULL, VIR_ERR_INVALID_ARG, "name must not be NULL", 0, 0};
    struct sharer s[4];
    pthread_t ta, tb, ts[4];
    virNodeDevicePtr nvme;
    int i;

    if (getenv("NODEDEV_TEST_ROUNDS") != NULL && atoi(getenv("NODEDEV_TEST_ROUNDS")) > 0)
        rounds = atoi(getenv("NODEDEV_TEST_ROUNDS"));
    conn = virConnectOpen("test:///default");
    CHECK(conn != NULL, "open");
    if (conn == NULL)
        return check_summary("threads");

    /* The main thread's error is not seen by the workers, nor theirs by it. */
    CHECK(virNodeDeviceLookupByName(NULL, "x") == NULL, "main thread error");
    pthread_barrier_init(&barrier, NULL, 2);
    CHECK(pthread_create(&ta, NULL, make_errors, &a) == 0, "thread a");
    CHECK(pthread_create(&tb, NULL, make_errors, &b) == 0, "thread b");
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&barrier);
    CHECK(a.rounds == rounds && a.bad == 0, "thread a read its own error every round (%d bad)", a.bad);
    CHECK(b.rounds == rounds && b.bad == 0, "thread b read its own error every round (%d bad)", b.bad);
    CHECK(virGetLastErrorCode() == VIR_ERR_INVALID_CONN, "main thread still has its own error");

    nvme = virNodeDeviceLookupByName(conn, "0000:06:00.0");
    CHECK(nvme != NULL, "lookup nvme");
    if (nvme != NULL) {
        for (i = 0; i < 4; i++) {
            s[i].dev = nvme;
            s[i].bad = 0;
            CHECK(pthread_create(&ts[i], NULL, share_device, &s[i]) == 0, "sharer %d", i);
        }
        for (i = 0; i < 4; i++) {
            pthread_join(ts[i], NULL);
            CHECK(s[i].bad == 0, "sharer %d: %d bad results", i, s[i].bad);
        }
        CHECK(virNodeDeviceFree(nvme) == 0, "last reference");
    }
    CHECK(virConnectClose(conn) == 0, "close");
    return check_summary("threads");
}
