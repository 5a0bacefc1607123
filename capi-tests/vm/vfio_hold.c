/* Hold a device through VFIO as a guest's QEMU does, until killed.
 *   vfio_hold GROUP ADDR   container + group + a device fd for ADDR
 *   vfio_hold GROUP        container + group only (no device fd)
 * Prints "ready" (flushed) once it holds what it should; exit 2 on error. */
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int die(const char *what)
{
    perror(what);
    return 2;
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
    printf("ready: group %d%s\n", group, device >= 0 ? ", device fd" : "");
    fflush(stdout);
    for (;;)
        pause();
}
