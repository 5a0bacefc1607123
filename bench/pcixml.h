/* For the enumeration peers of bench/list_xml.c (list_udev.c, list_pci.c):
 * the reads of sysfs that neither libudev nor libpci offer (SR-IOV links,
 * the IOMMU group's members), done the way libvirt's node-device driver
 * does them (readlink, opendir), and the node-device XML written in the
 * same form as nodedev's, so that bench/compare_xml.py can check that the
 * three programs report the same fields. */
#ifndef PCIXML_H
#define PCIXML_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int pcix_parse(const char *s, unsigned a[4])
{
    return sscanf(s, "%x:%x:%x.%x", &a[0], &a[1], &a[2], &a[3]) == 4 ? 0 : -1;
}

static void pcix_node_name(char *out, size_t len, const char *addr)
{
    size_t i;
    snprintf(out, len, "pci_%s", addr);
    for (i = 0; out[i]; i++)
        if (out[i] == ':' || out[i] == '.')
            out[i] = '_';
}

static void pcix_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '\'': fputs("&apos;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void pcix_address(FILE *f, const char *indent, const unsigned a[4])
{
    fprintf(f, "%s<address domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'/>\n",
            indent, a[0], a[1], a[2], a[3]);
}

/* The PCI address a link of the device's directory points to. */
static int pcix_link_address(const char *dir, const char *name, unsigned a[4])
{
    char path[PATH_MAX + 64], target[PATH_MAX];
    const char *base;
    ssize_t n;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((n = readlink(path, target, sizeof(target) - 1)) < 0)
        return -1;
    target[n] = 0;
    base = strrchr(target, '/');
    return pcix_parse(base ? base + 1 : target, a);
}

static long pcix_read_long(const char *dir, const char *name, int base, long dflt)
{
    char path[PATH_MAX + 64], buf[64];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "re")))
        return dflt;
    if (!fgets(buf, sizeof(buf), f)) {
        fclose(f);
        return dflt;
    }
    fclose(f);
    return strtol(buf, NULL, base);
}

static int pcix_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The head of a device's XML, up to and with <vendor>. */
static void pcix_head(FILE *f, const char *addr, const char *path, const char *parent,
                      const char *driver, unsigned klass, unsigned vendor, unsigned device,
                      const char *vname, const char *pname)
{
    char name[64];
    unsigned a[4] = {0};
    pcix_parse(addr, a);
    pcix_node_name(name, sizeof(name), addr);
    fprintf(f, "<device>\n  <name>%s</name>\n  <path>", name);
    pcix_escape(f, path);
    fprintf(f, "</path>\n  <parent>%s</parent>\n", parent);
    if (driver) {
        fputs("  <driver>\n    <name>", f);
        pcix_escape(f, driver);
        fputs("</name>\n  </driver>\n", f);
    }
    fprintf(f, "  <capability type='pci'>\n    <class>0x%06x</class>\n", klass);
    fprintf(f, "    <domain>%u</domain>\n    <bus>%u</bus>\n    <slot>%u</slot>\n    <function>%u</function>\n",
            a[0], a[1], a[2], a[3]);
    if (pname) {
        fprintf(f, "    <product id='0x%04x'>", device);
        pcix_escape(f, pname);
        fputs("</product>\n", f);
    } else {
        fprintf(f, "    <product id='0x%04x'/>\n", device);
    }
    if (vname) {
        fprintf(f, "    <vendor id='0x%04x'>", vendor);
        pcix_escape(f, vname);
        fputs("</vendor>\n", f);
    } else {
        fprintf(f, "    <vendor id='0x%04x'/>\n", vendor);
    }
}

/* The rest: SR-IOV (physfn, virtfnN links as libvirt's
 * virPCIGetVirtualFunctions walks them), the IOMMU group's members (a
 * listing of its devices/ directory), the NUMA node. */
static void pcix_tail(FILE *f, const char *dir, int group, long numa)
{
    unsigned a[4];
    long total;
    if (pcix_link_address(dir, "physfn", a) == 0) {
        fputs("    <capability type='phys_function'>\n", f);
        pcix_address(f, "      ", a);
        fputs("    </capability>\n", f);
    }
    total = pcix_read_long(dir, "sriov_totalvfs", 10, 0);
    if (total > 0) {
        char link[32];
        int i;
        fprintf(f, "    <capability type='virt_functions' maxCount='%ld'>\n", total);
        for (i = 0;; i++) {
            snprintf(link, sizeof(link), "virtfn%d", i);
            if (pcix_link_address(dir, link, a) < 0)
                break;
            pcix_address(f, "      ", a);
        }
        fputs("    </capability>\n", f);
    }
    if (group >= 0) {
        char path[PATH_MAX];
        char *names[256];
        int n = 0, i;
        DIR *d;
        struct dirent *e;
        snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", group);
        if ((d = opendir(path))) {
            while ((e = readdir(d)) && n < 256)
                if (e->d_name[0] != '.')
                    names[n++] = strdup(e->d_name);
            closedir(d);
        }
        qsort(names, n, sizeof(names[0]), pcix_cmp);
        fprintf(f, "    <iommuGroup number='%d'>\n", group);
        for (i = 0; i < n; i++) {
            if (pcix_parse(names[i], a) == 0)
                pcix_address(f, "      ", a);
            free(names[i]);
        }
        fputs("    </iommuGroup>\n", f);
    }
    if (numa >= 0)
        fprintf(f, "    <numa node='%ld'/>\n", numa);
    fputs("  </capability>\n</device>\n", f);
}

/* ---- the peers' output: what list_udev.c and list_pci.c share ---- */

/* One device's fields, as a peer read them. */
struct pcix_dev {
    const char *addr;   /* DDDD:BB:SS.F */
    const char *path;   /* canonical sysfs path */
    const char *parent; /* node name of the parent, or "computer" */
    const char *driver; /* NULL: none */
    unsigned klass, vendor, device;
    const char *vname, *pname; /* names from pci.ids, NULL: unknown */
    const char *dir;    /* where to read SR-IOV links: the device's directory */
    int group;          /* IOMMU group, -1: none */
    long numa;          /* NUMA node, -1: none */
};

/* Where the XML goes: with -p to stdout (bench/compare_xml.py), otherwise
 * to memory (the same formatting work, no terminal), with a count. */
struct pcix_out {
    FILE *f;
    char *buf;
    size_t len;
    int print, n;
};

static int pcix_open(struct pcix_out *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->print = argc > 1 && strcmp(argv[1], "-p") == 0;
    o->f = o->print ? stdout : open_memstream(&o->buf, &o->len);
    return o->f ? 0 : -1;
}

static void pcix_device(struct pcix_out *o, const struct pcix_dev *d)
{
    pcix_head(o->f, d->addr, d->path, d->parent, d->driver, d->klass, d->vendor, d->device, d->vname, d->pname);
    pcix_tail(o->f, d->dir, d->group, d->numa);
    o->n++;
}

/* Prints the count of devices and bytes of XML (without -p); exit code. */
static int pcix_close(struct pcix_out *o)
{
    fclose(o->f);
    if (!o->print)
        printf("%d devices, %zu bytes of XML\n", o->n, o->len);
    free(o->buf);
    return 0;
}

#endif
