/* What a daemon does at start: list every device and read its XML.
 * usage: list_xml [-p] [URI]   prints the number of devices and XML bytes,
 * or with -p the XML itself (bench/compare_xml.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodedev.h"

int main(int argc, char **argv)
{
    int print = argc > 1 && strcmp(argv[1], "-p") == 0;
    virConnectPtr conn = virConnectOpenReadOnly(argc > 1 + print ? argv[1 + print] : NULL);
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
        if (print)
            fputs(xml, stdout);
        free(xml);
        virNodeDeviceFree(devs[i]);
    }
    free(devs);
    virConnectClose(conn);
    if (!print)
        printf("%d devices, %zu bytes of XML\n", n, bytes);
    return 0;
}
