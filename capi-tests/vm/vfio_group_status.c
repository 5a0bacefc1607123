/* Ask the kernel whether an IOMMU group is viable for VFIO: open the
 * container and the group and read VFIO_GROUP_GET_STATUS.
 * usage: vfio_group_status N   exit 0 viable, 1 not viable, 2 error */
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char path[64];
    struct vfio_group_status status = { .argsz = sizeof(status) };
    int container, group;

    if (argc != 2) {
        fprintf(stderr, "usage: %s GROUP\n", argv[0]);
        return 2;
    }
    container = open("/dev/vfio/vfio", O_RDWR);
    if (container < 0) {
        perror("/dev/vfio/vfio");
        return 2;
    }
    snprintf(path, sizeof(path), "/dev/vfio/%s", argv[1]);
    group = open(path, O_RDWR);
    if (group < 0) {
        perror(path);
        return 2;
    }
    if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0) {
        perror("VFIO_GROUP_GET_STATUS");
        return 2;
    }
    printf("group %s %s\n", argv[1], (status.flags & VFIO_GROUP_FLAGS_VIABLE) ? "viable" : "not viable");
    close(group);
    close(container);
    return (status.flags & VFIO_GROUP_FLAGS_VIABLE) ? 0 : 1;
}
