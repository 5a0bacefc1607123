/*
 * nodedev and the real libvirt.so.0 in one process (tests/ecosystem.rs).
 * Linked against libnodedev only; libvirt is brought in either by
 * LD_PRELOAD (so it is searched first) or by dlopen(RTLD_GLOBAL) here
 * (argument "dlopen"). Because our symbols carry the version node
 * NODEDEV_0.1.0 and libvirt's carry LIBVIRT_*, the dynamic linker binds
 * this program's calls to nodedev whatever the load order. What versioning
 * cannot do: a program linked with -lvirt before -lnodedev records
 * libvirt's versions and gets libvirt's functions.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "nodedev.h"

static int passed, failed;
#define CHECK(c, what)                                                          \
    do {                                                                        \
        if (c) {                                                                \
            passed++;                                                           \
        } else {                                                                \
            failed++;                                                           \
            fprintf(stderr, "FAIL line %d: %s\n", __LINE__, what);              \
        }                                                                       \
    } while (0)

/* The file of the object that defines the function at `fn`. */
static const char *object_of(void *fn)
{
    Dl_info info;
    return dladdr(fn, &info) && info.dli_fname ? info.dli_fname : "?";
}

int main(int argc, char **argv)
{
    virConnectPtr conn;
    virNodeDevicePtr dev;
    void *libvirt = NULL;

    if (argc > 1 && strcmp(argv[1], "dlopen") == 0) {
        libvirt = dlopen("libvirt.so.0", RTLD_NOW | RTLD_GLOBAL);
        CHECK(libvirt != NULL, "dlopen libvirt.so.0");
    } else {
        libvirt = dlopen("libvirt.so.0", RTLD_NOW | RTLD_NOLOAD);
        CHECK(libvirt != NULL, "libvirt.so.0 was preloaded");
    }
    if (libvirt == NULL)
        return 1;
    /* libvirt's own virConnectOpen is there, and is not ours. */
    void *theirs = dlsym(libvirt, "virConnectOpen");
    CHECK(theirs != NULL && theirs != (void *)virConnectOpen, "libvirt's virConnectOpen is distinct");
    CHECK(strstr(object_of(theirs), "libvirt.so") != NULL, "libvirt's symbol lives in libvirt.so");
    /* Ours resolve to libnodedev, by version. */
    CHECK(strstr(object_of((void *)virConnectOpen), "libnodedev.so") != NULL, "virConnectOpen is nodedev's");
    CHECK(strstr(object_of((void *)virNodeDeviceDetachFlags), "libnodedev.so") != NULL,
          "virNodeDeviceDetachFlags is nodedev's");
    CHECK(dlvsym(RTLD_DEFAULT, "virConnectOpen", "NODEDEV_0.1.0") == (void *)virConnectOpen,
          "the NODEDEV_0.1.0 version is what we call");

    /* And they behave as nodedev: the simulated host and its devices. */
    conn = virConnectOpen("test:///default");
    CHECK(conn != NULL, "open test:///default");
    if (conn == NULL)
        return 1;
    dev = virNodeDeviceLookupByName(conn, "pci_0000_04_10_0");
    CHECK(dev != NULL, "nodedev's simulated VF");
    CHECK(dev != NULL && virNodeDeviceDetachFlags(dev, "vfio", 0) == 0, "detach");
    CHECK(dev != NULL && virNodeDeviceReAttach(dev) == 0, "reattach");
    if (dev != NULL)
        virNodeDeviceFree(dev);
    virConnectClose(conn);
    printf("coexist(%s): %d passed, %d failed\n", argc > 1 ? argv[1] : "preload", passed, failed);
    return failed == 0 ? 0 : 1;
}
