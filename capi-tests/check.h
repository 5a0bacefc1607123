/*
 * check.h: the tiny test harness shared by the C programs in capi-tests/.
 *
 * Each program runs CHECKs, prints "N passed, M failed" last and exits 0
 * only when nothing failed. Built by build.rs (cc crate, -Wall -Wextra
 * -Werror) and linked and run against libnodedev.so by tests/capi.rs.
 */
#ifndef NODEDEV_CHECK_H
#define NODEDEV_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodedev.h"

static int check_passed;
static int check_failed;

/* CHECK(condition, printf-format, ...): count a pass, or report a failure
 * with the thread's last error (which reading it does not change). */
#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            check_passed++;                                                     \
        } else {                                                                \
            check_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, " [last error %d: %s]\n", virGetLastErrorCode(),    \
                    virGetLastErrorMessage());                                  \
        }                                                                       \
    } while (0)

/* The last error is `code` (and domain `domain` unless it is -1), and its
 * message contains `needle` (unless NULL). */
#define CHECK_ERROR(want_code, want_domain, needle, what)                      \
    do {                                                                        \
        virErrorPtr e_ = virGetLastError();                                     \
        int wc_ = (int)(want_code), wd_ = (int)(want_domain);                   \
        const char *n_ = (needle);                                              \
        CHECK(e_ != NULL && e_->code == wc_, "%s: expected error %d", what,     \
              wc_);                                                             \
        if (e_ != NULL && wd_ != -1)                                            \
            CHECK(e_->domain == wd_, "%s: expected domain %d, got %d", what,    \
                  wd_, e_->domain);                                             \
        if (e_ != NULL && n_ != NULL)                                           \
            CHECK(e_->message != NULL && strstr(e_->message, n_) != NULL,       \
                  "%s: message should contain \"%s\"", what, n_);              \
        if (e_ != NULL)                                                         \
            CHECK(e_->level == VIR_ERR_ERROR, "%s: level", what);               \
    } while (0)

#define CHECK_NO_ERROR(what)                                                    \
    CHECK(virGetLastError() == NULL && virGetLastErrorCode() == VIR_ERR_OK,     \
          "%s: expected no last error", what)

static inline int check_summary(const char *program)
{
    printf("%s: %d passed, %d failed\n", program, check_passed, check_failed);
    return check_failed == 0 && check_passed > 0 ? 0 : 1;
}

/* The driver bound to `name` now, from its XML: a malloc'ed string, or NULL
 * when it has none. Exits on a lookup failure. */
static inline char *driver_of(virConnectPtr conn, const char *name)
{
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, name);
    char *xml, *drv, *start, *end, *out = NULL;
    if (dev == NULL) {
        fprintf(stderr, "cannot look up %s: %s\n", name, virGetLastErrorMessage());
        exit(2);
    }
    xml = virNodeDeviceGetXMLDesc(dev, 0);
    if (xml == NULL) {
        fprintf(stderr, "no XML for %s: %s\n", name, virGetLastErrorMessage());
        exit(2);
    }
    drv = strstr(xml, "<driver>");
    if (drv != NULL && (start = strstr(drv, "<name>")) != NULL &&
        (end = strstr(start, "</name>")) != NULL) {
        start += strlen("<name>");
        out = strndup(start, (size_t)(end - start));
    }
    free(xml);
    virNodeDeviceFree(dev);
    return out;
}

/* Whether `name`'s driver is `want` (NULL: no driver); prints what it is otherwise. */
static inline int driver_is(virConnectPtr conn, const char *name, const char *want)
{
    char *have = driver_of(conn, name);
    int ok = (have == NULL && want == NULL) ||
             (have != NULL && want != NULL && strcmp(have, want) == 0);
    if (!ok)
        fprintf(stderr, "  %s: driver is %s, expected %s\n", name,
                have ? have : "(none)", want ? want : "(none)");
    free(have);
    return ok;
}

#endif /* NODEDEV_CHECK_H */
