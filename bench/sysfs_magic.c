/* LD_PRELOAD shim for bench/list_udev only: libudev (systemd >= 246)
 * refuses a device directory whose filesystem is not sysfs (it checks
 * fstatfs's f_type), so on the generated tree (a plain directory
 * bind-mounted over /sys) it finds no device. This reports the tree's
 * filesystem as sysfs, and nothing else changes: no extra syscall, the
 * real fstatfs answers first. Never needed on a real host.
 *
 *   cc -O2 -shared -fPIC sysfs_magic.c -o sysfs_magic.so -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/statfs.h>
#include <sys/vfs.h>

#define SYSFS_MAGIC 0x62656572

static long tree_type = -1;

static void init_tree_type(void)
{
    static int (*real_statfs)(const char *, struct statfs *);
    struct statfs st;
    if (tree_type != -1)
        return;
    real_statfs = (int (*)(const char *, struct statfs *))dlsym(RTLD_NEXT, "statfs");
    tree_type = real_statfs && real_statfs("/sys", &st) == 0 ? (long)st.f_type : 0;
}

int fstatfs(int fd, struct statfs *buf)
{
    static int (*real)(int, struct statfs *);
    int r;
    if (!real)
        real = (int (*)(int, struct statfs *))dlsym(RTLD_NEXT, "fstatfs");
    init_tree_type();
    r = real(fd, buf);
    if (r == 0 && (long)buf->f_type == tree_type)
        buf->f_type = SYSFS_MAGIC;
    return r;
}

int fstatfs64(int fd, struct statfs64 *buf)
{
    static int (*real)(int, struct statfs64 *);
    int r;
    if (!real)
        real = (int (*)(int, struct statfs64 *))dlsym(RTLD_NEXT, "fstatfs64");
    init_tree_type();
    r = real(fd, buf);
    if (r == 0 && (long)buf->f_type == tree_type)
        buf->f_type = SYSFS_MAGIC;
    return r;
}
