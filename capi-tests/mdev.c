/*
 * Mediated devices through libvirt's calls, as a libvirt client makes
 * them: create from XML, define, start, autostart, destroy, undefine, the
 * list flags, and libvirt's errors. test:///default's integrated GPU
 * (pci_0000_00_02_0) is a GVT-g parent; definitions go to a temporary
 * confdir (mdevctl's layout under DIR/mdevctl.d).
 */
#define _GNU_SOURCE
#include "check.h"

#include <unistd.h>

#define UUID1 "6f1a6e0c-3d1b-4c5e-9a0b-1c2d3e4f5a61"
#define UUID2 "6f1a6e0c-3d1b-4c5e-9a0b-1c2d3e4f5a62"
#define NAME1 "mdev_6f1a6e0c_3d1b_4c5e_9a0b_1c2d3e4f5a61_0000_00_02_0"

static const char create_xml[] =
    "<device>\n"
    "  <parent>pci_0000_00_02_0</parent>\n"
    "  <capability type='mdev'>\n"
    "    <type id='i915-GVTg_V5_4'/>\n"
    "    <uuid>" UUID1 "</uuid>\n"
    "  </capability>\n"
    "</device>\n";

static const char define_xml[] =
    "<device><parent>pci_0000_00_02_0</parent>"
    "<capability type='mdev'><type id='i915-GVTg_V5_8'/><uuid>" UUID2 "</uuid></capability></device>";

static int count(virConnectPtr conn, unsigned int flags);

#define NAME2 "mdev_6f1a6e0c_3d1b_4c5e_9a0b_1c2d3e4f5a62_0000_00_02_0"

/* The authorization callback's last question, and whether it allows. */
static int allow, asked;
static virNodeDeviceOperation last_op;
static char last_dev[96], last_driver[64], last_owner[16];

static int ask(virConnectPtr conn, virNodeDeviceOperation op, const char *device, const char *owner,
               const char *driver, void *opaque)
{
    (void)conn;
    (void)opaque;
    asked++;
    last_op = op;
    snprintf(last_dev, sizeof(last_dev), "%s", device ? device : "(null)");
    snprintf(last_driver, sizeof(last_driver), "%s", driver ? driver : "(null)");
    snprintf(last_owner, sizeof(last_owner), "%s", owner ? owner : "(null)");
    return allow;
}

#define ASKED(op, dev, drv, what)                                                                    \
    CHECK(asked == 1 && last_op == (op) && strcmp(last_dev, dev) == 0 && strcmp(last_driver, drv) == 0 && \
              strcmp(last_owner, "(null)") == 0,                                                     \
          "%s: asked %d time(s), op %d for %s (driver %s)", what, asked, (int)last_op, last_dev, last_driver); \
    asked = 0

/* Every mdev change asks the callback with its own operation code; a
 * denial is VIR_ERR_OPERATION_DENIED and changes nothing. A locked-down
 * host refuses them all. */
static void authorization(virConnectPtr conn, const char *dir)
{
    virNodeDevicePtr live, def;
    char uri[160];
    virConnectPtr locked;

    CHECK(virConnectSetNodeDeviceAuthCallback(conn, ask, NULL, NULL) == 0, "register the callback");
    allow = 0;
    asked = 0;
    CHECK(virNodeDeviceCreateXML(conn, create_xml, 0) == NULL, "create denied");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, "authorization callback", "create denied");
    ASKED(VIR_NODE_DEVICE_OP_MDEV_CREATE, NAME1, "i915-GVTg_V5_4", "create");
    CHECK(virNodeDeviceDefineXML(conn, define_xml, 0) == NULL, "define denied");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, "authorization callback", "define denied");
    ASKED(VIR_NODE_DEVICE_OP_MDEV_DEFINE, NAME2, "i915-GVTg_V5_8", "define");
    CHECK(count(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV) == 0, "nothing created or defined");

    allow = 1;
    live = virNodeDeviceCreateXML(conn, create_xml, 0);
    def = virNodeDeviceDefineXML(conn, define_xml, 0);
    CHECK(live != NULL && def != NULL, "allowed: created and defined");
    if (live == NULL || def == NULL)
        return;
    asked = 0;
    allow = 0;
    CHECK(virNodeDeviceDestroy(live) == -1, "destroy denied");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, NULL, "destroy denied");
    ASKED(VIR_NODE_DEVICE_OP_MDEV_DESTROY, NAME1, "(null)", "destroy");
    CHECK(virNodeDeviceIsActive(live) == 1, "still live");
    CHECK(virNodeDeviceCreate(def, 0) == -1, "start denied");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, NULL, "start denied");
    ASKED(VIR_NODE_DEVICE_OP_MDEV_CREATE, NAME2, "i915-GVTg_V5_8", "start");
    CHECK(virNodeDeviceSetAutostart(def, 1) == -1, "autostart denied");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, NULL, "autostart denied");
    ASKED(VIR_NODE_DEVICE_OP_MDEV_AUTOSTART, NAME2, "i915-GVTg_V5_8", "autostart");
    CHECK(virNodeDeviceUndefine(def, 0) == -1, "undefine denied");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, NULL, "undefine denied");
    ASKED(VIR_NODE_DEVICE_OP_MDEV_UNDEFINE, NAME2, "(null)", "undefine");
    CHECK(virNodeDeviceIsActive(def) == 0 && virNodeDeviceIsPersistent(def) == 1, "still defined, inactive");

    /* Locked down (lockdown=1 on the URI): refused whatever the callback says. */
    snprintf(uri, sizeof(uri), "test:///default?confdir=%s&lockdown=1", dir);
    locked = virConnectOpen(uri);
    CHECK(locked != NULL, "open %s", uri);
    if (locked != NULL) {
        virNodeDevicePtr l = virNodeDeviceLookupByName(locked, NAME1);
        CHECK(virNodeDeviceCreateXML(locked, create_xml, 0) == NULL, "locked: create");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, "locked down", "locked: create");
        CHECK(virNodeDeviceDefineXML(locked, define_xml, 0) == NULL, "locked: define");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, "locked down", "locked: define");
        CHECK(l != NULL && virNodeDeviceDestroy(l) == -1, "locked: destroy");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, "locked down", "locked: destroy");
        if (l != NULL)
            virNodeDeviceFree(l);
        virConnectClose(locked);
    }

    allow = 1;
    CHECK(virNodeDeviceDestroy(live) == 0 && virNodeDeviceUndefine(def, 0) == 0, "allowed: removed");
    CHECK(virConnectSetNodeDeviceAuthCallback(conn, NULL, NULL, NULL) == 0, "remove the callback");
    virNodeDeviceFree(live);
    virNodeDeviceFree(def);
}

/* Number of devices listed with `flags` (counted only: no handles made). */
static int count(virConnectPtr conn, unsigned int flags)
{
    return virConnectListAllNodeDevices(conn, NULL, flags);
}

static int xml_has(virNodeDevicePtr dev, const char *needle)
{
    char *xml = virNodeDeviceGetXMLDesc(dev, 0);
    int found = xml != NULL && strstr(xml, needle) != NULL;
    free(xml);
    return found;
}

int main(void)
{
    char dir[] = "/tmp/nodedev-mdev-c-XXXXXX";
    char uri[128], cmd[160];
    virConnectPtr conn, ro;
    virNodeDevicePtr mdev, def, parent, again;
    int autostart = -1, pci;

    if (mkdtemp(dir) == NULL)
        return 2;
    snprintf(uri, sizeof(uri), "test:///default?confdir=%s", dir);
    conn = virConnectOpen(uri);
    CHECK(conn != NULL, "open %s", uri);
    if (conn == NULL)
        return check_summary("mdev");
    pci = count(conn, 0);
    CHECK(count(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES) == 1, "one mdev parent");
    CHECK(count(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV) == 0, "no mdev yet");

    /* virNodeDeviceCreateXML: a transient mdev. */
    mdev = virNodeDeviceCreateXML(conn, create_xml, 0);
    CHECK(mdev != NULL, "create from XML");
    if (mdev == NULL)
        return check_summary("mdev");
    CHECK(strcmp(virNodeDeviceGetName(mdev), NAME1) == 0, "libvirt's name: %s", virNodeDeviceGetName(mdev));
    CHECK(strcmp(virNodeDeviceGetParent(mdev), "pci_0000_00_02_0") == 0, "parent");
    CHECK(xml_has(mdev, "<capability type='mdev'>") && xml_has(mdev, "<uuid>" UUID1 "</uuid>") &&
              xml_has(mdev, "<iommuGroup number="),
          "mdev XML");
    CHECK(virNodeDeviceIsActive(mdev) == 1 && virNodeDeviceIsPersistent(mdev) == 0, "active, transient");
    CHECK(virNodeDeviceSetAutostart(mdev, 1) == -1, "no autostart for a transient mdev");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "transient", "autostart transient");
    CHECK(virNodeDeviceCreateXML(conn, create_xml, 0) == NULL, "the same UUID twice");
    CHECK_ERROR(VIR_ERR_INTERNAL_ERROR, VIR_FROM_NODEDEV, UUID1, "duplicate UUID");
    CHECK(virNodeDeviceDetachFlags(mdev, NULL, 0) == -1, "detach is for PCI devices");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_NODEDEV, "not a PCI device", "detach mdev");
    again = virNodeDeviceLookupByName(conn, NAME1);
    CHECK(again != NULL, "lookup by libvirt's name");
    if (again != NULL)
        virNodeDeviceFree(again);

    /* The parent: pci and mdev_types, its availability counted down. */
    parent = virNodeDeviceLookupByName(conn, "pci_0000_00_02_0");
    CHECK(parent != NULL && virNodeDeviceNumOfCaps(parent) == 2, "parent has two capabilities");
    CHECK(parent != NULL && xml_has(parent, "<capability type='mdev_types'>") &&
              xml_has(parent, "<availableInstances>3</availableInstances>"),
          "parent XML lists its types");

    /* virNodeDeviceDefineXML: persistent, inactive; mdevctl's file. */
    def = virNodeDeviceDefineXML(conn, define_xml, 0);
    CHECK(def != NULL, "define from XML");
    if (def != NULL) {
        snprintf(cmd, sizeof(cmd), "%s/mdevctl.d/0000:00:02.0/%s", dir, UUID2);
        CHECK(access(cmd, R_OK) == 0, "mdevctl file %s", cmd);
        CHECK(virNodeDeviceIsActive(def) == 0 && virNodeDeviceIsPersistent(def) == 1, "inactive, persistent");
        CHECK(count(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV) == 2, "two mdevs");
        CHECK(count(conn, VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV | VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE) == 1,
              "one inactive");
        CHECK(count(conn, VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE) == pci + 1, "active: PCI and the live mdev");
        CHECK(count(conn, 0) == pci + 2, "all");
        CHECK(virNodeDeviceDestroy(def) == -1, "destroy an inactive one");
        CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "not active", "destroy inactive");
        CHECK(virNodeDeviceSetAutostart(def, 1) == 0, "autostart on");
        CHECK(virNodeDeviceGetAutostart(def, &autostart) == 0 && autostart == 1, "autostart reads back");
        CHECK(virNodeDeviceCreate(def, 0) == 0, "start the defined one");
        CHECK(virNodeDeviceIsActive(def) == 1, "now active");
        CHECK(virNodeDeviceCreate(def, 0) == -1, "start twice");
        CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_NODEDEV, "already active", "start twice");
        CHECK(virNodeDeviceDestroy(def) == 0, "stop it");
        CHECK(virNodeDeviceIsActive(def) == 0 && virNodeDeviceIsPersistent(def) == 1, "stopped, still defined");
        CHECK(virNodeDeviceUndefine(def, 0) == 0, "undefine");
        CHECK(access(cmd, F_OK) == -1, "file gone");
        CHECK(virNodeDeviceIsActive(def) == -1, "neither live nor defined");
        CHECK_ERROR(VIR_ERR_NO_NODE_DEVICE, VIR_FROM_NODEDEV, NULL, "gone");
        virNodeDeviceFree(def);
    }

    /* libvirt's errors for documents and devices it cannot create. */
    CHECK(virNodeDeviceCreateXML(conn, "<device>", 0) == NULL, "malformed");
    CHECK_ERROR(VIR_ERR_XML_DETAIL, VIR_FROM_NODEDEV, NULL, "malformed");
    CHECK(virNodeDeviceCreateXML(conn, "<device><capability type='mdev'><type id='x'/></capability></device>", 0) ==
              NULL,
          "no parent");
    CHECK_ERROR(VIR_ERR_CONFIG_UNSUPPORTED, VIR_FROM_NODEDEV, "parent", "no parent");
    CHECK(virNodeDeviceCreateXML(conn, "<device><parent>computer</parent><capability type='scsi_host'/></device>",
                                 0) == NULL,
          "a vHBA");
    CHECK_ERROR(VIR_ERR_CONFIG_UNSUPPORTED, VIR_FROM_NODEDEV, NULL, "vHBA");
    CHECK(parent != NULL && virNodeDeviceDestroy(parent) == -1, "destroy a PCI device");
    CHECK_ERROR(VIR_ERR_CONFIG_UNSUPPORTED, VIR_FROM_NODEDEV, NULL, "destroy PCI");

    /* Read-only: denied before the document is read. */
    ro = virConnectOpenReadOnly(uri);
    CHECK(ro != NULL && virNodeDeviceCreateXML(ro, NULL, 0) == NULL, "read-only create");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_NODEDEV, NULL, "read-only create");
    if (ro != NULL)
        virConnectClose(ro);

    /* virNodeDeviceDestroy: gone; the parent has its instance back. */
    CHECK(virNodeDeviceDestroy(mdev) == 0, "destroy");
    CHECK(virNodeDeviceIsActive(mdev) == -1, "destroyed transient mdev is gone");
    CHECK(parent != NULL && xml_has(parent, "<availableInstances>4</availableInstances>"), "instance back");
    virNodeDeviceFree(mdev);
    if (parent != NULL)
        virNodeDeviceFree(parent);
    authorization(conn, dir);
    virConnectClose(conn);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("mdev");
}
