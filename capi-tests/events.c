/*
 * Node-device events as a libvirt client gets them, on test:///default:
 * libvirt's error without an event loop, then the default loop
 * (virEventRegisterDefaultImpl + virEventRunDefaultImpl) delivering
 * LIFECYCLE (DELETED and CREATED per VF when the PF's VFs are removed and
 * made again) and UPDATE (a device detached to vfio-pci and back) made
 * through another connection; a filtered callback; freecb on deregister and
 * on close; and nodedev's descriptor + dispatch extension in a poll loop.
 */
#include "check.h"
#include <poll.h>

static virConnectPtr events_conn;
static int created, deleted, updates, nic_updates, wrong_conn, freed, timed_out;
static int net_created, net_deleted, net_xml_ok;

static void on_lifecycle(virConnectPtr conn, virNodeDevicePtr dev, int event, int detail, void *opaque)
{
    const char *name = virNodeDeviceGetName(dev);
    char *xml;
    (void)opaque;
    if (conn != events_conn || detail != 0 || name == NULL)
        wrong_conn++;
    if (name != NULL && strncmp(name, "net_", 4) == 0) {
        /* The NIC's interface: its name, parent and, once there, its XML. */
        if (strcmp(name, "net_eth1_52_54_00_03_01_00") != 0 ||
            strcmp(virNodeDeviceGetParent(dev), "pci_0000_03_01_0") != 0)
            wrong_conn++;
        if (event == VIR_NODE_DEVICE_EVENT_CREATED) {
            net_created++;
            xml = virNodeDeviceGetXMLDesc(dev, 0);
            if (xml != NULL && strstr(xml, "<interface>eth1</interface>") != NULL)
                net_xml_ok++;
            free(xml);
        } else if (event == VIR_NODE_DEVICE_EVENT_DELETED) {
            net_deleted++;
        }
        return;
    }
    if (event == VIR_NODE_DEVICE_EVENT_CREATED)
        created++;
    else if (event == VIR_NODE_DEVICE_EVENT_DELETED)
        deleted++;
}

static void on_update(virConnectPtr conn, virNodeDevicePtr dev, void *opaque)
{
    (void)opaque;
    if (conn != events_conn || dev == NULL)
        wrong_conn++;
    updates++;
}

static void on_nic_update(virConnectPtr conn, virNodeDevicePtr dev, void *opaque)
{
    (void)conn;
    (void)opaque;
    if (strcmp(virNodeDeviceGetName(dev), "pci_0000_03_01_0") != 0)
        wrong_conn++;
    nic_updates++;
}

static void on_free(void *opaque)
{
    (void)opaque;
    freed++;
}

static void on_timeout(int timer, void *opaque)
{
    (void)timer;
    (void)opaque;
    timed_out = 1;
}

/* Run the default loop until *counter reaches want, or 5 s pass. */
static int run_until(int *counter, int want)
{
    int t = virEventAddTimeout(5000, on_timeout, NULL, NULL);
    timed_out = 0;
    while (*counter < want && !timed_out) {
        if (virEventRunDefaultImpl() < 0)
            break;
    }
    virEventRemoveTimeout(t);
    return *counter >= want;
}

int main(void)
{
    virConnectPtr first, other, fdconn;
    virNodeDevicePtr pf, nic, nic_events;
    int life, upd, filt, fd, n;
    struct pollfd p;

    events_conn = virConnectOpen("test:///default");
    first = events_conn;
    other = virConnectOpen("test:///default");
    CHECK(events_conn != NULL && other != NULL, "open");
    if (events_conn == NULL || other == NULL)
        return check_summary("events");

    /* Without an event loop: libvirt's error. */
    CHECK(virConnectNodeDeviceEventRegisterAny(events_conn, NULL, VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE,
                                               VIR_NODE_DEVICE_EVENT_CALLBACK(on_lifecycle), NULL, NULL) == -1,
          "register without a loop");
    CHECK_ERROR(VIR_ERR_INTERNAL_ERROR, VIR_FROM_NONE, "event loop", "no loop");

    CHECK(virEventRegisterDefaultImpl() == 0, "default loop");
    life = virConnectNodeDeviceEventRegisterAny(events_conn, NULL, VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE,
                                                VIR_NODE_DEVICE_EVENT_CALLBACK(on_lifecycle), NULL, on_free);
    upd = virConnectNodeDeviceEventRegisterAny(events_conn, NULL, VIR_NODE_DEVICE_EVENT_ID_UPDATE,
                                               VIR_NODE_DEVICE_EVENT_CALLBACK(on_update), NULL, on_free);
    nic_events = virNodeDeviceLookupByName(events_conn, "pci_0000_03_01_0");
    filt = virConnectNodeDeviceEventRegisterAny(events_conn, nic_events, VIR_NODE_DEVICE_EVENT_ID_UPDATE,
                                                VIR_NODE_DEVICE_EVENT_CALLBACK(on_nic_update), NULL, on_free);
    CHECK(life >= 0 && upd >= 0 && filt >= 0 && life != upd && upd != filt, "register: %d %d %d", life, upd, filt);
    /* 2: libvirt's VIR_NODE_DEVICE_EVENT_ID_LAST (shown with VIR_ENUM_SENTINELS only). */
    CHECK(virConnectNodeDeviceEventRegisterAny(events_conn, NULL, 2,
                                               VIR_NODE_DEVICE_EVENT_CALLBACK(on_update), NULL, NULL) == -1,
          "eventID LAST refused");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, NULL, "eventID LAST");

    /* VFs removed and made again through another connection. */
    pf = virNodeDeviceLookupByName(other, "pci_0000_04_00_0");
    CHECK(virNodeDeviceSetVFs(pf, 0, NULL, 0) == 0, "remove the VFs");
    CHECK(run_until(&deleted, 3) && deleted == 3, "one DELETED per VF: %d", deleted);
    CHECK(virNodeDeviceSetVFs(pf, 4, "none", 0) == 4, "make 4 VFs");
    CHECK(run_until(&created, 4) && created == 4, "one CREATED per VF: %d", created);
    CHECK(nic_updates == 0, "the NIC's filter saw no VF event");

    /* The NIC moved to vfio-pci and back: UPDATEs (unbind, bind each way). */
    nic = virNodeDeviceLookupByName(other, "pci_0000_03_01_0");
    updates = 0;
    CHECK(virNodeDeviceDetachFlags(nic, "vfio", 0) == 0, "detach");
    CHECK(run_until(&nic_updates, 2), "UPDATE for unbind and bind: %d", nic_updates);
    CHECK(virNodeDeviceReAttach(nic) == 0, "reattach");
    CHECK(net_deleted == 1 && net_created == 0, "its interface DELETED: %d %d", net_deleted, net_created);
    CHECK(run_until(&nic_updates, 4), "UPDATE back: %d", nic_updates);
    CHECK(net_deleted == 1 && net_created == 1 && net_xml_ok == 1, "its interface CREATED again: %d %d %d",
          net_deleted, net_created, net_xml_ok);
    CHECK(updates == nic_updates, "catch-all and filter agree: %d %d", updates, nic_updates);
    CHECK(wrong_conn == 0, "callbacks got their connection and device");

    /* Deregistering calls freecb; an unknown id is refused. */
    CHECK(virConnectNodeDeviceEventDeregisterAny(events_conn, upd) == 0, "deregister");
    CHECK(freed == 1, "freecb on deregister");
    CHECK(virConnectNodeDeviceEventDeregisterAny(events_conn, upd) == -1, "twice");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NONE, "could not find event callback", "unknown id");

    /* The extension: a descriptor in the caller's own poll loop. */
    fdconn = virConnectOpen("test:///default");
    fd = virConnectNodeDeviceEventGetFD(fdconn, 0);
    CHECK(fd >= 0, "descriptor");
    events_conn = fdconn;
    created = 0;
    CHECK(virConnectNodeDeviceEventRegisterAny(fdconn, NULL, VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE,
                                               VIR_NODE_DEVICE_EVENT_CALLBACK(on_lifecycle), NULL, on_free) >= 0,
          "register on the descriptor's connection");
    p.fd = fd;
    p.events = POLLIN;
    CHECK(poll(&p, 1, 50) == 0, "quiet while nothing happens");
    CHECK(virNodeDeviceSetVFs(pf, 0, NULL, 0) == 0, "remove the VFs again");
    CHECK(poll(&p, 1, 2000) == 1 && (p.revents & POLLIN), "readable after the change");
    n = virConnectNodeDeviceEventDispatch(fdconn, 0);
    CHECK(n >= 4, "dispatched %d events", n);
    CHECK(deleted == 3 + 4, "DELETED through dispatch: %d", deleted);
    CHECK(virConnectNodeDeviceEventDispatch(fdconn, 0) == 0, "nothing left");

    /* Closing a connection frees the callbacks it still has. */
    freed = 0;
    CHECK(virConnectClose(fdconn) == 0 && freed == 1, "close frees the descriptor connection's callback");
    freed = 0;
    virNodeDeviceFree(nic_events);
    CHECK(virConnectClose(first) == 0 && freed == 2, "close frees the 2 callbacks left: %d", freed);
    virNodeDeviceFree(pf);
    virNodeDeviceFree(nic);
    virConnectClose(other);
    /* One more iteration: the loop frees the removed watch's data. */
    n = virEventAddTimeout(0, on_timeout, NULL, NULL);
    CHECK(virEventRunDefaultImpl() == 0, "last iteration");
    virEventRemoveTimeout(n);
    return check_summary("events");
}
