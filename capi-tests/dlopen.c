/*
 * A plugin's view: load libnodedev.so.0 at run time with dlopen (this
 * program is linked without -lnodedev), find the functions with dlsym (and
 * with dlvsym at version NODEDEV_0.1.0), call through them, and check that
 * Rust internals are not exported.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "nodedev.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
#define CHECK(cond, what)                                                     \
    do {                                                                      \
        if (cond) {                                                           \
            passed++;                                                         \
        } else {                                                              \
            failed++;                                                         \
            fprintf(stderr, "FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, what, \
                    #cond);                                                   \
        }                                                                     \
    } while (0)

typedef virConnectPtr (*open_fn)(const char *);
typedef int (*close_fn)(virConnectPtr);
typedef virNodeDevicePtr (*lookup_fn)(virConnectPtr, const char *);
typedef const char *(*name_fn)(virNodeDevicePtr);
typedef char *(*xml_fn)(virNodeDevicePtr, unsigned int);
typedef int (*free_fn)(virNodeDevicePtr);
typedef int (*code_fn)(void);
typedef int (*list_fn)(virConnectPtr, virNodeDevicePtr **, unsigned int);

/* dlsym returns void *; POSIX guarantees the conversion to a function pointer. */
#define LOAD(var, type, name)                              \
    do {                                                   \
        void *sym_ = dlsym(lib, name);                     \
        CHECK(sym_ != NULL, "dlsym " name);                \
        if (sym_ == NULL) {                                \
            fprintf(stderr, "  %s\n", dlerror());          \
            goto out;                                      \
        }                                                  \
        memcpy(&var, &sym_, sizeof(var));                  \
    } while (0)

int main(void)
{
    void *lib = dlopen("libnodedev.so.0", RTLD_NOW | RTLD_LOCAL);
    open_fn open_ro;
    close_fn close_conn;
    lookup_fn lookup;
    name_fn get_name;
    xml_fn get_xml;
    free_fn free_dev;
    code_fn last_code;
    list_fn list_all;
    virConnectPtr conn;
    virNodeDevicePtr dev;
    char *xml;
    int n;

    CHECK(lib != NULL, "dlopen libnodedev.so.0");
    if (lib == NULL) {
        fprintf(stderr, "  %s\n", dlerror());
        goto out;
    }
    LOAD(open_ro, open_fn, "virConnectOpenReadOnly");
    LOAD(close_conn, close_fn, "virConnectClose");
    LOAD(lookup, lookup_fn, "virNodeDeviceLookupByName");
    LOAD(get_name, name_fn, "virNodeDeviceGetName");
    LOAD(get_xml, xml_fn, "virNodeDeviceGetXMLDesc");
    LOAD(free_dev, free_fn, "virNodeDeviceFree");
    LOAD(last_code, code_fn, "virGetLastErrorCode");
    LOAD(list_all, list_fn, "virConnectListAllNodeDevices");

    CHECK(dlvsym(lib, "virNodeDeviceDetachFlags", "NODEDEV_0.1.0") != NULL, "versioned symbol");
    CHECK(dlvsym(lib, "virNodeDeviceDetachFlags", "LIBVIRT_0.9.0") == NULL, "no other version");
    CHECK(dlsym(lib, "rust_eh_personality") == NULL, "Rust internals are hidden");
    CHECK(dlsym(lib, "malloc_str") == NULL, "crate internals are hidden");

    conn = open_ro("test:///default");
    CHECK(conn != NULL, "open through dlsym");
    if (conn == NULL)
        goto out;
    n = list_all(conn, NULL, 0);
    CHECK(n > 10, "count through dlsym");
    dev = lookup(conn, "0000:00:1f.3");
    CHECK(dev != NULL, "lookup through dlsym");
    if (dev != NULL) {
        CHECK(strcmp(get_name(dev), "pci_0000_00_1f_3") == 0, "name through dlsym");
        xml = get_xml(dev, 0);
        CHECK(xml != NULL && strstr(xml, "<name>i801_smbus</name>") != NULL, "XML through dlsym");
        free(xml);
        CHECK(free_dev(dev) == 0, "free through dlsym");
    }
    CHECK(lookup(conn, "pci_0000_0f_00_0") == NULL, "failed lookup through dlsym");
    CHECK(last_code() == VIR_ERR_NO_NODE_DEVICE, "error code through dlsym");
    CHECK(close_conn(conn) == 0, "close through dlsym");
out:
    if (lib != NULL)
        CHECK(dlclose(lib) == 0, "dlclose");
    printf("dlopen: %d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
