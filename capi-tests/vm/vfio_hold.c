/* Hold a device through VFIO as a guest's QEMU does, until killed.
 *   vfio_hold GROUP ADDR   container + group + a device fd for ADDR
 *   vfio_hold GROUP        container + group only (no device fd)
 * Prints "ready" (flushed) once it holds what it should; exit 2 on error.
 * VFIO_HOLD_MODE (suite-attack.sh): "device-only" closes the group and the
 * container once it has the device fd (a process that keeps, or was handed,
 * only the device fd); "leader-exits" holds from a second thread while the
 * main thread exits (its /proc/PID/fd is then empty). */
#include <fcntl.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int die(const char *what)
{
    perror(what);
    return 2;
}

static void *park(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    char path[64];
    int container, group, device = -1;

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s GROUP [ADDR]\n", argv[0]);
        return 2;
    }
    container = open("/dev/vfio/vfio", O_RDWR);
    if (container < 0)
        return die("/dev/vfio/vfio");
    snprintf(path, sizeof(path), "/dev/vfio/%s", argv[1]);
    group = open(path, O_RDWR);
    if (group < 0)
        return die(path);
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
        return die("VFIO_GROUP_SET_CONTAINER");
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0)
        return die("VFIO_SET_IOMMU");
    if (argc == 3) {
        device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[2]);
        if (device < 0)
            return die("VFIO_GROUP_GET_DEVICE_FD");
    }
    const char *mode = getenv("VFIO_HOLD_MODE");
    if (mode && strcmp(mode, "device-only") == 0 && device >= 0) {
        close(group);
        close(container);
    }
    printf("ready: group %d%s\n", group, device >= 0 ? ", device fd" : "");
    fflush(stdout);
    if (mode && strcmp(mode, "leader-exits") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, park, NULL) != 0)
            return die("pthread_create");
        pthread_exit(NULL);
    }
    for (;;)
        pause();
}
