/* What a daemon does at start: list every device and read its XML.
 * usage: list_xml [URI]   prints the number of devices and XML bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodedev.h"

int main(int argc, char **argv)
{
    virConnectPtr conn = virConnectOpenReadOnly(argc > 1 ? argv[1] : NULL);
    virNodeDevicePtr *devs = NULL;
    size_t bytes = 0;
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
    for (i = 0; i < n; i++) {
        char *xml = virNodeDeviceGetXMLDesc(devs[i], 0);
        if (xml == NULL) {
            fprintf(stderr, "xml: %s\n", virGetLastErrorMessage());
            return 1;
        }
        bytes += strlen(xml);
        free(xml);
        virNodeDeviceFree(devs[i]);
    }
    free(devs);
    virConnectClose(conn);
    printf("%d devices, %zu bytes of XML\n", n, bytes);
    return 0;
}
