/*
 * An out-of-tree consumer: built only with `pkg-config --cflags --libs
 * nodedev` against an installed prefix (tests/install.rs), it opens the
 * simulated host and counts its devices. Prints "devices N".
 */
#include <nodedev.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    virNodeDevicePtr *devs = NULL;
    int n, i;

    if (conn == NULL) {
        fprintf(stderr, "open: %s\n", virGetLastErrorMessage());
        return 1;
    }
    n = virConnectListAllNodeDevices(conn, &devs, 0);
    if (n < 0) {
        fprintf(stderr, "list: %s\n", virGetLastErrorMessage());
        return 1;
    }
    for (i = 0; i < n; i++)
        virNodeDeviceFree(devs[i]);
    free(devs);
    virConnectClose(conn);
    printf("devices %d\n", n);
    return 0;
}
