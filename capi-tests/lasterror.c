/*
 * The virGetLastError family with libvirt's semantics: virGetLastError,
 * virGetLastErrorCode/Domain/Message, virResetLastError, virCopyLastError,
 * virSaveLastError + virFreeError, virResetError, the virConn* variants,
 * and the error callbacks (virSetErrorFunc, virConnSetErrorFunc).
 */
#include "check.h"

struct seen {
    int calls;
    int code;
    void *data;
    char message[512];
};

static void record(void *data, virErrorPtr err)
{
    struct seen *s = data;
    s->calls++;
    s->code = err ? err->code : -1;
    s->data = data;
    snprintf(s->message, sizeof(s->message), "%s", err && err->message ? err->message : "");
    /* A callback may call the library; reading the error must not change it. */
    if (virGetLastError() != err)
        s->code = -2;
}

static void make_error(virConnectPtr conn)
{
    /* A well-formed name of a device that does not exist. */
    virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "pci_0000_0e_00_0");
    CHECK(dev == NULL, "unknown device lookup fails");
}

static void getters(virConnectPtr conn)
{
    virErrorPtr err;

    virResetLastError();
    CHECK(virGetLastError() == NULL, "none after reset");
    CHECK(virGetLastErrorCode() == VIR_ERR_OK, "code 0 when none");
    CHECK(virGetLastErrorDomain() == VIR_FROM_NONE, "domain 0 when none");
    CHECK(strcmp(virGetLastErrorMessage(), "no error") == 0, "\"no error\" when none");

    make_error(conn);
    err = virGetLastError();
    CHECK(err != NULL, "error set");
    if (err == NULL)
        return;
    CHECK(err->code == VIR_ERR_NO_NODE_DEVICE, "code");
    CHECK(err->domain == VIR_FROM_NODEDEV, "domain");
    CHECK(err->level == VIR_ERR_ERROR, "level");
    CHECK(err->message != NULL && strstr(err->message, "0000:0e:00.0") != NULL, "message names the device");
    CHECK(err->conn == NULL && err->dom == NULL && err->net == NULL, "deprecated pointers are NULL");
    CHECK(virGetLastErrorCode() == VIR_ERR_NO_NODE_DEVICE, "virGetLastErrorCode");
    CHECK(virGetLastErrorDomain() == VIR_FROM_NODEDEV, "virGetLastErrorDomain");
    CHECK(virGetLastErrorMessage() == err->message, "virGetLastErrorMessage is the same string");
    CHECK(virGetLastError() == err, "reading does not change it");

    /* virConn* variants: the connection's own copy (libvirt's conn->err),
     * kept across successful calls until the next error or a reset. */
    {
        virErrorPtr cerr = virConnGetLastError(conn);
        CHECK(cerr != NULL && cerr != err && cerr->code == VIR_ERR_NO_NODE_DEVICE &&
                  cerr->message != NULL && strcmp(cerr->message, err->message) == 0,
              "virConnGetLastError: a copy on the connection");
        char *uri = virConnectGetURI(conn);
        CHECK(uri != NULL, "a successful call");
        free(uri);
        CHECK(virGetLastError() == NULL && virConnGetLastError(conn) == cerr &&
                  cerr->code == VIR_ERR_NO_NODE_DEVICE,
              "a successful call clears the thread's error, not the connection's");
        CHECK(virConnGetLastError(NULL) == NULL, "virConnGetLastError(NULL)");
        virConnResetLastError(NULL);
        CHECK(cerr->code == VIR_ERR_NO_NODE_DEVICE, "virConnResetLastError(NULL) does nothing");
        virConnResetLastError(conn);
        CHECK(cerr->code == VIR_ERR_OK && cerr->message == NULL, "virConnResetLastError empties it");
        CHECK(virConnGetLastError(conn) == cerr, "still the connection's (empty) error");
        make_error(conn);
        err = virGetLastError();
        virConnResetLastError(conn);
        CHECK(virGetLastError() == err && err->code == VIR_ERR_NO_NODE_DEVICE,
              "virConnResetLastError leaves the thread's error");
    }

    /* The libvirt idiom virResetError(virGetLastError()) empties it. */
    make_error(conn);
    virResetError(virGetLastError());
    CHECK(virGetLastError() == NULL, "virResetError on the last error");
    CHECK(strcmp(virGetLastErrorMessage(), "no error") == 0, "message after virResetError");
    virResetError(NULL);
}

static void copies(virConnectPtr conn)
{
    virError copy;
    virErrorPtr saved;

    /* Garbage in the destination must not be read or freed. */
    memset(&copy, 0x5a, sizeof(copy));
    virResetLastError();
    CHECK(virCopyLastError(&copy) == 0, "copy with no error returns 0");
    CHECK(copy.code == 0 && copy.message == NULL && copy.str1 == NULL, "copy with no error is empty");
    CHECK(virCopyLastError(NULL) == -1, "copy to NULL");

    make_error(conn);
    memset(&copy, 0x5a, sizeof(copy));
    CHECK(virCopyLastError(&copy) == VIR_ERR_NO_NODE_DEVICE, "copy returns the code");
    CHECK(copy.code == VIR_ERR_NO_NODE_DEVICE && copy.domain == VIR_FROM_NODEDEV, "copied code/domain");
    CHECK(copy.message != NULL && copy.message != virGetLastError()->message, "copied message is a copy");
    CHECK(copy.message != NULL && strcmp(copy.message, virGetLastErrorMessage()) == 0, "same text");
    CHECK(virGetLastError() != NULL, "copying keeps the last error");
    virResetError(&copy);
    CHECK(copy.code == 0 && copy.message == NULL, "virResetError empties the copy");

    CHECK(virConnCopyLastError(conn, &copy) == VIR_ERR_NO_NODE_DEVICE, "virConnCopyLastError");
    virResetError(&copy);
    CHECK(virConnCopyLastError(NULL, &copy) == -1, "virConnCopyLastError(NULL conn)");
    CHECK(virConnCopyLastError(conn, NULL) == -1, "virConnCopyLastError(NULL to)");

    saved = virSaveLastError();
    CHECK(saved != NULL && saved->code == VIR_ERR_NO_NODE_DEVICE, "virSaveLastError");
    virResetLastError();
    CHECK(saved != NULL && saved->message != NULL && strstr(saved->message, "0000:0e:00.0") != NULL,
          "saved error survives virResetLastError");
    virFreeError(saved);
    virFreeError(NULL);

    saved = virSaveLastError();
    CHECK(saved != NULL && saved->code == VIR_ERR_OK && saved->message == NULL,
          "virSaveLastError with no error: an empty error");
    virFreeError(saved);

    /* A new failure replaces the previous error; the copy stays. */
    make_error(conn);
    saved = virSaveLastError();
    CHECK(virNodeDeviceLookupByName(conn, NULL) == NULL, "second error");
    CHECK(virGetLastErrorCode() == VIR_ERR_INVALID_ARG, "last error replaced");
    CHECK(saved->code == VIR_ERR_NO_NODE_DEVICE, "saved copy unchanged");
    virFreeError(saved);
}

static void callbacks(virConnectPtr conn)
{
    struct seen global, mine;
    virConnectPtr other = virConnectOpen("test:///default");
    memset(&global, 0, sizeof(global));
    memset(&mine, 0, sizeof(mine));

    virSetErrorFunc(&global, record);
    make_error(conn);
    CHECK(global.calls == 1 && global.code == VIR_ERR_NO_NODE_DEVICE, "global callback called once");
    CHECK(global.data == &global, "user data passed");
    CHECK(strstr(global.message, "0000:0e:00.0") != NULL, "callback sees the message");
    CHECK(virGetLastErrorCode() == VIR_ERR_NO_NODE_DEVICE, "last error set as well");

    CHECK(virNodeNumOfDevices(conn, NULL, 0) > 0, "success");
    CHECK(global.calls == 1, "no callback on success");

    CHECK(virConnectOpen("bogus:///") == NULL, "open failure");
    CHECK(global.calls == 2 && global.code == VIR_ERR_NO_CONNECT, "open errors go to the global callback");

    /* A connection's callback takes priority, for that connection only. */
    virConnSetErrorFunc(conn, &mine, record);
    make_error(conn);
    CHECK(mine.calls == 1 && global.calls == 2, "connection callback preferred");
    {
        virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, "pci_0000_00_1f_3");
        CHECK(virNodeDeviceGetXMLDesc(dev, 8) == NULL, "device error");
        CHECK(mine.calls == 2 && mine.code == VIR_ERR_INVALID_ARG, "device errors use the device's connection");
        virNodeDeviceFree(dev);
    }
    if (other != NULL) {
        make_error(other);
        CHECK(global.calls == 3 && mine.calls == 2, "another connection uses the global callback");
    }
    virConnSetErrorFunc(conn, NULL, NULL);
    make_error(conn);
    CHECK(global.calls == 4 && mine.calls == 2, "connection callback removed");
    virConnSetErrorFunc(NULL, &mine, record); /* ignored */

    virSetErrorFunc(NULL, NULL);
    make_error(conn);
    CHECK(global.calls == 4, "global callback removed: default handler (silent without NODEDEV_DEBUG)");
    CHECK(virGetLastErrorCode() == VIR_ERR_NO_NODE_DEVICE, "errors still recorded");

    /* virDefaultErrorFunc prints and does not change the last error. */
    virDefaultErrorFunc(NULL);
    virDefaultErrorFunc(virGetLastError());
    CHECK(virGetLastErrorCode() == VIR_ERR_NO_NODE_DEVICE, "virDefaultErrorFunc keeps the error");
    if (other != NULL)
        virConnectClose(other);
}

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    CHECK(conn != NULL, "open");
    if (conn == NULL)
        return check_summary("lasterror");
    getters(conn);
    copies(conn);
    callbacks(conn);
    virConnectClose(conn);
    return check_summary("lasterror");
}
