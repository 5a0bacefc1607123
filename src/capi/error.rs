//! libvirt's error model: the `virError` struct (libvirt's exact layout), the
//! error enums with libvirt's names and values, the thread-local last error,
//! error callbacks and the `virGetLastError` family.
//!
//! Every public call except this family resets the calling thread's last
//! error on entry; a failing call sets it, then dispatches it: to the
//! connection's handler (virConnSetErrorFunc), else to the global handler
//! (virSetErrorFunc), else to the default handler, which prints
//! `nodedev: MESSAGE` on stderr only when the environment variable
//! `NODEDEV_DEBUG` is set (`crate::debug`; libvirt's always prints; a
//! library that writes to a daemon's stderr unasked is a nuisance).

use super::boundary::Raised;
use super::connect::{conn_from_ptr, virConnect, virConnectPtr};
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::Mutex;

/// How serious an error is (`virError.level`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virErrorLevel {
    /// No error (the level of an empty `virError`).
    VIR_ERR_NONE = 0,
    /// A warning; nodedev raises none.
    VIR_ERR_WARNING = 1,
    /// An error: every error nodedev raises has this level.
    VIR_ERR_ERROR = 2,
}

/// Which part of the library raised an error (`virError.domain`), with
/// libvirt's values. nodedev raises only VIR_FROM_NONE and VIR_FROM_NODEDEV;
/// the other values exist so that code written for libvirt compiles.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virErrorDomain {
    /// No particular part of the library: connection and argument errors of the connection calls, and URI errors.
    VIR_FROM_NONE = 0,
    /// libvirt: Xen hypervisor layer.
    VIR_FROM_XEN = 1,
    /// libvirt: xend connection.
    VIR_FROM_XEND = 2,
    /// libvirt: Xen Store.
    VIR_FROM_XENSTORE = 3,
    /// libvirt: S-expression code.
    VIR_FROM_SEXPR = 4,
    /// libvirt: XML code.
    VIR_FROM_XML = 5,
    /// libvirt: domain operations.
    VIR_FROM_DOM = 6,
    /// libvirt: RPC code.
    VIR_FROM_RPC = 7,
    /// libvirt: proxy code (unused).
    VIR_FROM_PROXY = 8,
    /// libvirt: configuration files.
    VIR_FROM_CONF = 9,
    /// libvirt: QEMU driver.
    VIR_FROM_QEMU = 10,
    /// libvirt: network operations.
    VIR_FROM_NET = 11,
    /// libvirt: test driver.
    VIR_FROM_TEST = 12,
    /// libvirt: remote driver.
    VIR_FROM_REMOTE = 13,
    /// libvirt: OpenVZ driver.
    VIR_FROM_OPENVZ = 14,
    /// libvirt: Xen XM layer.
    VIR_FROM_XENXM = 15,
    /// libvirt: Linux statistics code.
    VIR_FROM_STATS_LINUX = 16,
    /// libvirt: Linux container driver.
    VIR_FROM_LXC = 17,
    /// libvirt: storage driver.
    VIR_FROM_STORAGE = 18,
    /// libvirt: network configuration.
    VIR_FROM_NETWORK = 19,
    /// libvirt: domain configuration.
    VIR_FROM_DOMAIN = 20,
    /// libvirt: UML driver (unused).
    VIR_FROM_UML = 21,
    /// The node device layer: every error about a device or a device handle, and argument errors of the node device calls.
    VIR_FROM_NODEDEV = 22,
    /// libvirt: Xen inotify layer.
    VIR_FROM_XEN_INOTIFY = 23,
    /// libvirt: security framework.
    VIR_FROM_SECURITY = 24,
    /// libvirt: VirtualBox driver.
    VIR_FROM_VBOX = 25,
    /// libvirt: interface operations.
    VIR_FROM_INTERFACE = 26,
    /// libvirt: OpenNebula driver (removed).
    VIR_FROM_ONE = 27,
    /// libvirt: ESX driver.
    VIR_FROM_ESX = 28,
    /// libvirt: phyp driver (unused).
    VIR_FROM_PHYP = 29,
    /// libvirt: secret storage.
    VIR_FROM_SECRET = 30,
    /// libvirt: CPU driver.
    VIR_FROM_CPU = 31,
    /// libvirt: XenAPI.
    VIR_FROM_XENAPI = 32,
    /// libvirt: network filter driver.
    VIR_FROM_NWFILTER = 33,
    /// libvirt: synchronous hooks.
    VIR_FROM_HOOK = 34,
    /// libvirt: domain snapshots.
    VIR_FROM_DOMAIN_SNAPSHOT = 35,
    /// libvirt: auditing.
    VIR_FROM_AUDIT = 36,
    /// libvirt: sysinfo/SMBIOS.
    VIR_FROM_SYSINFO = 37,
    /// libvirt: I/O streams.
    VIR_FROM_STREAMS = 38,
    /// libvirt: VMware driver.
    VIR_FROM_VMWARE = 39,
    /// libvirt: event loop.
    VIR_FROM_EVENT = 40,
    /// libvirt: libxenlight driver.
    VIR_FROM_LIBXL = 41,
    /// libvirt: lock manager.
    VIR_FROM_LOCKING = 42,
    /// libvirt: Hyper-V driver.
    VIR_FROM_HYPERV = 43,
    /// libvirt: capabilities.
    VIR_FROM_CAPABILITIES = 44,
    /// libvirt: URI handling.
    VIR_FROM_URI = 45,
    /// libvirt: authentication.
    VIR_FROM_AUTH = 46,
    /// libvirt: D-Bus.
    VIR_FROM_DBUS = 47,
    /// libvirt: Parallels driver.
    VIR_FROM_PARALLELS = 48,
    /// libvirt: device handling.
    VIR_FROM_DEVICE = 49,
    /// libvirt: libssh2 transport.
    VIR_FROM_SSH = 50,
    /// libvirt: lockspace.
    VIR_FROM_LOCKSPACE = 51,
    /// libvirt: initctl.
    VIR_FROM_INITCTL = 52,
    /// libvirt: identity code.
    VIR_FROM_IDENTITY = 53,
    /// libvirt: cgroups.
    VIR_FROM_CGROUP = 54,
    /// libvirt: access control.
    VIR_FROM_ACCESS = 55,
    /// libvirt: systemd code.
    VIR_FROM_SYSTEMD = 56,
    /// libvirt: bhyve driver.
    VIR_FROM_BHYVE = 57,
    /// libvirt: crypto code.
    VIR_FROM_CRYPTO = 58,
    /// libvirt: firewall.
    VIR_FROM_FIREWALL = 59,
    /// libvirt: polkit.
    VIR_FROM_POLKIT = 60,
    /// libvirt: thread utilities.
    VIR_FROM_THREAD = 61,
    /// libvirt: admin backend.
    VIR_FROM_ADMIN = 62,
    /// libvirt: log manager.
    VIR_FROM_LOGGING = 63,
    /// libvirt: Xen xl configuration.
    VIR_FROM_XENXL = 64,
    /// libvirt: perf.
    VIR_FROM_PERF = 65,
    /// libvirt: libssh transport.
    VIR_FROM_LIBSSH = 66,
    /// libvirt: resource control.
    VIR_FROM_RESCTRL = 67,
    /// libvirt: firewalld.
    VIR_FROM_FIREWALLD = 68,
    /// libvirt: domain checkpoints.
    VIR_FROM_DOMAIN_CHECKPOINT = 69,
    /// libvirt: TPM.
    VIR_FROM_TPM = 70,
    /// libvirt: BPF code.
    VIR_FROM_BPF = 71,
    /// libvirt: Cloud-Hypervisor driver.
    VIR_FROM_CH = 72,
}

/// Error codes (`virError.code`), with libvirt's values 0 to 110. The ones
/// nodedev raises say "Raised by nodedev"; the others exist so that code
/// written for libvirt compiles.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virErrorNumber {
    /// No error: the value of `code` when no error is set.
    VIR_ERR_OK = 0,
    /// Internal error: a bug in nodedev (a caught panic is reported with this code). Raised by nodedev.
    VIR_ERR_INTERNAL_ERROR = 1,
    /// A memory allocation failed. Raised by nodedev.
    VIR_ERR_NO_MEMORY = 2,
    /// libvirt: the driver does not support this function. Not raised by nodedev.
    VIR_ERR_NO_SUPPORT = 3,
    /// libvirt: a host name could not be resolved. Not raised by nodedev.
    VIR_ERR_UNKNOWN_HOST = 4,
    /// The connection URI could not be opened (unknown URI, bad parameter, unreadable host description). Raised by nodedev.
    VIR_ERR_NO_CONNECT = 5,
    /// The `virConnectPtr` argument is NULL or not a live connection. Raised by nodedev.
    VIR_ERR_INVALID_CONN = 6,
    /// libvirt: invalid domain object. Not raised by nodedev.
    VIR_ERR_INVALID_DOMAIN = 7,
    /// An argument is NULL where it must not be, malformed (a device name, a driver name), out of range, or a flags value has unsupported bits. Raised by nodedev.
    VIR_ERR_INVALID_ARG = 8,
    /// The kernel refused an operation or did not do what was asked (the message names the sysfs file and errno, or the driver the device ended on). Raised by nodedev.
    VIR_ERR_OPERATION_FAILED = 9,
    /// libvirt: an HTTP GET failed. Not raised by nodedev.
    VIR_ERR_GET_FAILED = 10,
    /// libvirt: an HTTP POST failed. Not raised by nodedev.
    VIR_ERR_POST_FAILED = 11,
    /// libvirt: unexpected HTTP status. Not raised by nodedev.
    VIR_ERR_HTTP_ERROR = 12,
    /// libvirt: S-expression serialization failed. Not raised by nodedev.
    VIR_ERR_SEXPR_SERIAL = 13,
    /// libvirt: the Xen hypervisor could not be opened. Not raised by nodedev.
    VIR_ERR_NO_XEN = 14,
    /// libvirt: a Xen hypervisor call failed. Not raised by nodedev.
    VIR_ERR_XEN_CALL = 15,
    /// libvirt: unknown guest OS type. Not raised by nodedev.
    VIR_ERR_OS_TYPE = 16,
    /// libvirt: guest kernel information missing. Not raised by nodedev.
    VIR_ERR_NO_KERNEL = 17,
    /// libvirt: guest root device information missing. Not raised by nodedev.
    VIR_ERR_NO_ROOT = 18,
    /// libvirt: source device information missing. Not raised by nodedev.
    VIR_ERR_NO_SOURCE = 19,
    /// libvirt: target device information missing. Not raised by nodedev.
    VIR_ERR_NO_TARGET = 20,
    /// libvirt: domain name missing. Not raised by nodedev.
    VIR_ERR_NO_NAME = 21,
    /// libvirt: guest OS information missing. Not raised by nodedev.
    VIR_ERR_NO_OS = 22,
    /// libvirt: guest device information missing (a missing *host* device is VIR_ERR_NO_NODE_DEVICE). Not raised by nodedev.
    VIR_ERR_NO_DEVICE = 23,
    /// libvirt: Xen Store could not be opened. Not raised by nodedev.
    VIR_ERR_NO_XENSTORE = 24,
    /// libvirt: too many drivers registered. Not raised by nodedev.
    VIR_ERR_DRIVER_FULL = 25,
    /// libvirt (deprecated): no driver supports the call. Not raised by nodedev.
    VIR_ERR_CALL_FAILED = 26,
    /// libvirt: malformed XML. Not raised by nodedev.
    VIR_ERR_XML_ERROR = 27,
    /// libvirt: the domain already exists. Not raised by nodedev.
    VIR_ERR_DOM_EXIST = 28,
    /// The operation changes a device but the connection was opened read-only (virConnectOpenReadOnly), or policy forbids it. Raised by nodedev.
    VIR_ERR_OPERATION_DENIED = 29,
    /// libvirt: a configuration file could not be opened. Not raised by nodedev.
    VIR_ERR_OPEN_FAILED = 30,
    /// libvirt: a configuration file could not be read. Not raised by nodedev.
    VIR_ERR_READ_FAILED = 31,
    /// libvirt: a configuration file could not be parsed. Not raised by nodedev.
    VIR_ERR_PARSE_FAILED = 32,
    /// libvirt: configuration file syntax error. Not raised by nodedev.
    VIR_ERR_CONF_SYNTAX = 33,
    /// libvirt: a configuration file could not be written. Not raised by nodedev.
    VIR_ERR_WRITE_FAILED = 34,
    /// libvirt: detail of an XML error. Not raised by nodedev.
    VIR_ERR_XML_DETAIL = 35,
    /// libvirt: invalid network object. Not raised by nodedev.
    VIR_ERR_INVALID_NETWORK = 36,
    /// libvirt: the network already exists. Not raised by nodedev.
    VIR_ERR_NETWORK_EXIST = 37,
    /// A system call on nodedev's own files failed (state directory, lock file). Raised by nodedev.
    VIR_ERR_SYSTEM_ERROR = 38,
    /// libvirt: RPC error. Not raised by nodedev.
    VIR_ERR_RPC = 39,
    /// libvirt: GnuTLS error. Not raised by nodedev.
    VIR_ERR_GNUTLS_ERROR = 40,
    /// libvirt warning: the network driver did not start. Not raised by nodedev.
    VIR_WAR_NO_NETWORK = 41,
    /// libvirt: domain not found. Not raised by nodedev.
    VIR_ERR_NO_DOMAIN = 42,
    /// libvirt: network not found. Not raised by nodedev.
    VIR_ERR_NO_NETWORK = 43,
    /// libvirt: invalid MAC address. Not raised by nodedev.
    VIR_ERR_INVALID_MAC = 44,
    /// libvirt: authentication failed. Not raised by nodedev.
    VIR_ERR_AUTH_FAILED = 45,
    /// libvirt: invalid storage pool object. Not raised by nodedev.
    VIR_ERR_INVALID_STORAGE_POOL = 46,
    /// libvirt: invalid storage volume object. Not raised by nodedev.
    VIR_ERR_INVALID_STORAGE_VOL = 47,
    /// libvirt warning: the storage driver did not start. Not raised by nodedev.
    VIR_WAR_NO_STORAGE = 48,
    /// libvirt: storage pool not found. Not raised by nodedev.
    VIR_ERR_NO_STORAGE_POOL = 49,
    /// libvirt: storage volume not found. Not raised by nodedev.
    VIR_ERR_NO_STORAGE_VOL = 50,
    /// libvirt warning: the node device driver did not start. Not raised by nodedev.
    VIR_WAR_NO_NODE = 51,
    /// The `virNodeDevicePtr` argument is NULL or not a live device handle. Raised by nodedev.
    VIR_ERR_INVALID_NODE_DEVICE = 52,
    /// No device with this (well-formed) name on the host. Raised by nodedev.
    VIR_ERR_NO_NODE_DEVICE = 53,
    /// libvirt: security model not found. Not raised by nodedev.
    VIR_ERR_NO_SECURITY_MODEL = 54,
    /// The device is not in a state where the operation applies (reset while a host driver owns it, reattach of a device that is not detached, detach of a bridge to vfio, detach to a second stub). Raised by nodedev.
    VIR_ERR_OPERATION_INVALID = 55,
    /// libvirt warning: the interface driver did not start. Not raised by nodedev.
    VIR_WAR_NO_INTERFACE = 56,
    /// libvirt: interface not found. Not raised by nodedev.
    VIR_ERR_NO_INTERFACE = 57,
    /// libvirt: invalid interface object. Not raised by nodedev.
    VIR_ERR_INVALID_INTERFACE = 58,
    /// libvirt: more than one interface matches. Not raised by nodedev.
    VIR_ERR_MULTIPLE_INTERFACES = 59,
    /// libvirt warning: the network filter driver did not start. Not raised by nodedev.
    VIR_WAR_NO_NWFILTER = 60,
    /// libvirt: invalid network filter object. Not raised by nodedev.
    VIR_ERR_INVALID_NWFILTER = 61,
    /// libvirt: network filter not found. Not raised by nodedev.
    VIR_ERR_NO_NWFILTER = 62,
    /// libvirt: building firewall rules failed. Not raised by nodedev.
    VIR_ERR_BUILD_FIREWALL = 63,
    /// libvirt warning: the secret driver did not start. Not raised by nodedev.
    VIR_WAR_NO_SECRET = 64,
    /// libvirt: invalid secret object. Not raised by nodedev.
    VIR_ERR_INVALID_SECRET = 65,
    /// libvirt: secret not found. Not raised by nodedev.
    VIR_ERR_NO_SECRET = 66,
    /// libvirt: unsupported configuration construct. Not raised by nodedev.
    VIR_ERR_CONFIG_UNSUPPORTED = 67,
    /// libvirt: an operation timed out. Not raised by nodedev.
    VIR_ERR_OPERATION_TIMEOUT = 68,
    /// libvirt: a migrated domain could not be made persistent. Not raised by nodedev.
    VIR_ERR_MIGRATE_PERSIST_FAILED = 69,
    /// libvirt: a hook script failed. Not raised by nodedev.
    VIR_ERR_HOOK_SCRIPT_FAILED = 70,
    /// libvirt: invalid domain snapshot object. Not raised by nodedev.
    VIR_ERR_INVALID_DOMAIN_SNAPSHOT = 71,
    /// libvirt: domain snapshot not found. Not raised by nodedev.
    VIR_ERR_NO_DOMAIN_SNAPSHOT = 72,
    /// libvirt: invalid stream object. Not raised by nodedev.
    VIR_ERR_INVALID_STREAM = 73,
    /// libvirt: valid argument the driver does not support. Not raised by nodedev.
    VIR_ERR_ARGUMENT_UNSUPPORTED = 74,
    /// libvirt: storage pool probe failed. Not raised by nodedev.
    VIR_ERR_STORAGE_PROBE_FAILED = 75,
    /// libvirt: storage pool already built. Not raised by nodedev.
    VIR_ERR_STORAGE_POOL_BUILT = 76,
    /// libvirt: a risky snapshot revert was not forced. Not raised by nodedev.
    VIR_ERR_SNAPSHOT_REVERT_RISKY = 77,
    /// libvirt: the operation was aborted. Not raised by nodedev.
    VIR_ERR_OPERATION_ABORTED = 78,
    /// libvirt: authentication was cancelled. Not raised by nodedev.
    VIR_ERR_AUTH_CANCELLED = 79,
    /// libvirt: domain metadata not present. Not raised by nodedev.
    VIR_ERR_NO_DOMAIN_METADATA = 80,
    /// libvirt: migration is not safe. Not raised by nodedev.
    VIR_ERR_MIGRATE_UNSAFE = 81,
    /// libvirt: integer overflow. Not raised by nodedev.
    VIR_ERR_OVERFLOW = 82,
    /// libvirt: prevented by an active block copy job. Not raised by nodedev.
    VIR_ERR_BLOCK_COPY_ACTIVE = 83,
    /// The host cannot do this at all (no IOMMU group for vfio, no kernel reset method for the device). Raised by nodedev.
    VIR_ERR_OPERATION_UNSUPPORTED = 84,
    /// libvirt: SSH transport error. Not raised by nodedev.
    VIR_ERR_SSH = 85,
    /// libvirt: the guest agent does not answer. Not raised by nodedev.
    VIR_ERR_AGENT_UNRESPONSIVE = 86,
    /// libvirt: the resource is already in use. Not raised by nodedev.
    VIR_ERR_RESOURCE_BUSY = 87,
    /// libvirt: access control denied the operation. Not raised by nodedev.
    VIR_ERR_ACCESS_DENIED = 88,
    /// libvirt: a D-Bus service failed. Not raised by nodedev.
    VIR_ERR_DBUS_SERVICE = 89,
    /// libvirt: the storage volume already exists. Not raised by nodedev.
    VIR_ERR_STORAGE_VOL_EXIST = 90,
    /// libvirt: the CPU is incompatible with the host CPU. Not raised by nodedev.
    VIR_ERR_CPU_INCOMPATIBLE = 91,
    /// libvirt: XML does not validate against its schema. Not raised by nodedev.
    VIR_ERR_XML_INVALID_SCHEMA = 92,
    /// libvirt: migration finish succeeded but returns NULL. Not raised by nodedev.
    VIR_ERR_MIGRATE_FINISH_OK = 93,
    /// libvirt: authentication unavailable. Not raised by nodedev.
    VIR_ERR_AUTH_UNAVAILABLE = 94,
    /// libvirt: server not found. Not raised by nodedev.
    VIR_ERR_NO_SERVER = 95,
    /// libvirt: client not found. Not raised by nodedev.
    VIR_ERR_NO_CLIENT = 96,
    /// libvirt (deprecated): the guest agent answered out of sync. Not raised by nodedev.
    VIR_ERR_AGENT_UNSYNCED = 97,
    /// libvirt: libssh transport error. Not raised by nodedev.
    VIR_ERR_LIBSSH = 98,
    /// libvirt: a guest device could not be found. Not raised by nodedev.
    VIR_ERR_DEVICE_MISSING = 99,
    /// libvirt: invalid network filter binding. Not raised by nodedev.
    VIR_ERR_INVALID_NWFILTER_BINDING = 100,
    /// libvirt: network filter binding not found. Not raised by nodedev.
    VIR_ERR_NO_NWFILTER_BINDING = 101,
    /// libvirt: invalid domain checkpoint object. Not raised by nodedev.
    VIR_ERR_INVALID_DOMAIN_CHECKPOINT = 102,
    /// libvirt: domain checkpoint not found. Not raised by nodedev.
    VIR_ERR_NO_DOMAIN_CHECKPOINT = 103,
    /// libvirt: domain backup job not found. Not raised by nodedev.
    VIR_ERR_NO_DOMAIN_BACKUP = 104,
    /// libvirt: invalid network port object. Not raised by nodedev.
    VIR_ERR_INVALID_NETWORK_PORT = 105,
    /// libvirt: the network port already exists. Not raised by nodedev.
    VIR_ERR_NETWORK_PORT_EXIST = 106,
    /// libvirt: network port not found. Not raised by nodedev.
    VIR_ERR_NO_NETWORK_PORT = 107,
    /// libvirt: the domain's host name was not found. Not raised by nodedev.
    VIR_ERR_NO_HOSTNAME = 108,
    /// libvirt: the checkpoint cannot be used. Not raised by nodedev.
    VIR_ERR_CHECKPOINT_INCONSISTENT = 109,
    /// libvirt: more than one domain matches. Not raised by nodedev.
    VIR_ERR_MULTIPLE_DOMAINS = 110,
}

/// Opaque libvirt domain object. nodedev has no domains: `virError.dom` is
/// always NULL. Declared so that `virError` has libvirt's layout.
pub struct virDomain {
    _opaque: [u8; 0],
}

/// Pointer to an opaque libvirt domain object (never produced by nodedev).
pub type virDomainPtr = *mut virDomain;

/// Opaque libvirt network object. nodedev has no networks: `virError.net` is
/// always NULL. Declared so that `virError` has libvirt's layout.
pub struct virNetwork {
    _opaque: [u8; 0],
}

/// Pointer to an opaque libvirt network object (never produced by nodedev).
pub type virNetworkPtr = *mut virNetwork;

/// An error, laid out exactly as libvirt's `struct _virError`, so code
/// compiled against libvirt's virterror.h reads nodedev's errors correctly.
///
/// Strings in a `virError` are allocated with malloc(): virResetError() and
/// virFreeError() free them with free(). The thread's last error
/// (virGetLastError) belongs to the library; a copy made by virSaveLastError
/// or virCopyLastError belongs to the caller.
#[repr(C)]
pub struct virError {
    /// The error code, a `virErrorNumber` value; VIR_ERR_OK (0) when empty.
    pub code: c_int,
    /// Which part of the library raised it, a `virErrorDomain` value.
    pub domain: c_int,
    /// The human-readable message (what happened, to which device, and what to
    /// do about it); NULL only when the error is empty.
    pub message: *mut c_char,
    /// How serious it is: VIR_ERR_ERROR for every error nodedev raises.
    pub level: virErrorLevel,
    /// Deprecated in libvirt; always NULL in nodedev.
    pub conn: virConnectPtr,
    /// Deprecated in libvirt; always NULL in nodedev.
    pub dom: virDomainPtr,
    /// Extra string information: nodedev stores the message here too, as
    /// libvirt stores its detail text; may be NULL.
    pub str1: *mut c_char,
    /// Extra string information; always NULL in nodedev.
    pub str2: *mut c_char,
    /// Extra string information; always NULL in nodedev.
    pub str3: *mut c_char,
    /// Extra number information; -1 in nodedev, as in libvirt.
    pub int1: c_int,
    /// Extra number information; -1 in nodedev, as in libvirt.
    pub int2: c_int,
    /// Deprecated in libvirt; always NULL in nodedev.
    pub net: virNetworkPtr,
}

/// Pointer to a `virError`.
pub type virErrorPtr = *mut virError;

/// An error callback (virSetErrorFunc, virConnSetErrorFunc): called on the
/// thread that raised the error, after the error became that thread's last
/// error, with the `userData` given when it was set and the thread's last
/// error (owned by the library, valid during the call; copy it with
/// virCopyLastError to keep it). It may call any nodedev function.
pub type virErrorFunc = Option<unsafe extern "C" fn(userData: *mut c_void, error: virErrorPtr)>;

const EMPTY: virError = virError {
    code: 0,
    domain: 0,
    message: ptr::null_mut(),
    level: virErrorLevel::VIR_ERR_NONE,
    conn: ptr::null_mut(),
    dom: ptr::null_mut(),
    str1: ptr::null_mut(),
    str2: ptr::null_mut(),
    str3: ptr::null_mut(),
    int1: 0,
    int2: 0,
    net: ptr::null_mut(),
};

/// A callback and its user data, as stored by virSetErrorFunc / virConnSetErrorFunc.
#[derive(Clone, Copy)]
pub(crate) struct Handler {
    func: unsafe extern "C" fn(*mut c_void, virErrorPtr),
    data: usize,
}

impl Handler {
    pub(crate) fn new(func: virErrorFunc, data: *mut c_void) -> Option<Handler> {
        func.map(|func| Handler { func, data: data as usize })
    }
}

static GLOBAL_HANDLER: Mutex<Option<Handler>> = Mutex::new(None);

/// The thread's last error. Its strings are malloc'ed, so that a caller's
/// virResetError(virGetLastError()) (a libvirt idiom) frees them correctly.
struct Slot(UnsafeCell<virError>);

impl Drop for Slot {
    fn drop(&mut self) {
        unsafe { clear(self.0.get()) }
    }
}

thread_local! {
    static LAST: Slot = const { Slot(UnsafeCell::new(EMPTY)) };
}

/// The calling thread's slot; None while the thread is being torn down.
fn slot() -> Option<*mut virError> {
    LAST.try_with(|s| s.0.get()).ok()
}

unsafe fn free_str(p: *mut c_char) {
    if !p.is_null() {
        libc::free(p.cast());
    }
}

/// malloc'ed copy of a C string (NULL stays NULL, and so does a failed malloc).
unsafe fn dup_c(p: *const c_char) -> *mut c_char {
    if p.is_null() {
        ptr::null_mut()
    } else {
        libc::strdup(p)
    }
}

/// Free the strings of `err` and make it empty (virResetError).
unsafe fn clear(err: *mut virError) {
    free_str((*err).message);
    free_str((*err).str1);
    free_str((*err).str2);
    free_str((*err).str3);
    err.write(EMPTY);
}

/// libvirt's virCopyError: `to` is overwritten without being read (callers
/// need not initialise it); an empty `from` gives an empty `to`. Returns the code.
unsafe fn copy(from: *const virError, to: *mut virError) -> c_int {
    to.write(EMPTY);
    if from.is_null() || (*from).code == 0 {
        return 0;
    }
    let f = &*from;
    to.write(virError {
        code: f.code,
        domain: f.domain,
        message: dup_c(f.message),
        level: f.level,
        str1: dup_c(f.str1),
        str2: dup_c(f.str2),
        str3: dup_c(f.str3),
        int1: f.int1,
        int2: f.int2,
        ..EMPTY
    });
    f.code
}

/// The thread's last error, or None when there is none.
fn current() -> Option<*mut virError> {
    slot().filter(|p| unsafe { (**p).code } != 0)
}

/// Empty the calling thread's last error (every public entry point does this).
pub(crate) fn reset_last() {
    if let Some(p) = slot() {
        unsafe { clear(p) }
    }
}

/// A connection's own last error (libvirt's `conn->err`): a copy of the
/// last error any thread raised on that connection, kept until the next one
/// or virConnResetLastError (a successful call does not reset it). Its
/// address is stable for the connection's life, as virConnGetLastError
/// hands it out.
pub(crate) struct ConnLastError {
    lock: Mutex<()>,
    err: UnsafeCell<virError>,
}

// SAFETY: `err` is only written under `lock`; its strings are malloc'ed and
// owned by it.
unsafe impl Send for ConnLastError {}
unsafe impl Sync for ConnLastError {}

impl ConnLastError {
    pub(crate) const fn new() -> ConnLastError {
        ConnLastError { lock: Mutex::new(()), err: UnsafeCell::new(EMPTY) }
    }

    fn with<T>(&self, f: impl FnOnce(*mut virError) -> T) -> T {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        f(self.err.get())
    }
}

impl Drop for ConnLastError {
    fn drop(&mut self) {
        unsafe { clear(self.err.get()) }
    }
}

/// Make `r` the calling thread's last error (and the connection's, as
/// libvirt's virDispatchError copies it), then hand it to the connection's
/// handler, else the global one, else the default one.
pub(crate) fn raise(conn: Option<&virConnect>, r: &Raised) {
    let Some(p) = slot() else { return };
    let text = r.message.replace('\0', "\\0");
    let msg = super::boundary::malloc_str(&text);
    unsafe {
        clear(p);
        p.write(virError {
            code: r.code,
            domain: r.domain,
            message: msg,
            level: virErrorLevel::VIR_ERR_ERROR,
            str1: dup_c(msg),
            int1: -1,
            int2: -1,
            ..EMPTY
        });
    }
    if let Some(c) = conn {
        c.last_error.with(|to| unsafe {
            clear(to);
            copy(p, to);
        });
    }
    let handler = conn
        .and_then(|c| *c.handler.lock().unwrap_or_else(|e| e.into_inner()))
        .or_else(|| *GLOBAL_HANDLER.lock().unwrap_or_else(|e| e.into_inner()));
    match handler {
        Some(h) => unsafe { (h.func)(h.data as *mut c_void, p) },
        None => {
            if crate::debug::enabled() {
                print_error(p);
            }
        }
    }
}

fn print_error(err: *const virError) {
    use std::io::Write;
    if err.is_null() || unsafe { (*err).code } == 0 {
        return;
    }
    let msg = unsafe { (*err).message };
    let text = if msg.is_null() { "unknown error".into() } else { unsafe { CStr::from_ptr(msg) }.to_string_lossy() };
    let _ = writeln!(std::io::stderr(), "nodedev: {text}");
}

use super::boundary::api_keep_error as keep;

/// The calling thread's last error.
///
/// Returns NULL when the last public call on this thread succeeded (every
/// call except this family resets the last error on entry). The error is
/// owned by the library: do not free it; it stays valid until the next
/// nodedev call on this thread. Copy it with virCopyLastError or
/// virSaveLastError to keep it. Threads never see each other's errors.
#[no_mangle]
pub extern "C" fn virGetLastError() -> virErrorPtr {
    keep("virGetLastError", ptr::null_mut(), |_| Ok(current().unwrap_or(ptr::null_mut())))
}

/// The code (`virErrorNumber`) of the calling thread's last error, or
/// VIR_ERR_OK (0) when there is none.
#[no_mangle]
pub extern "C" fn virGetLastErrorCode() -> c_int {
    keep("virGetLastErrorCode", 0, |_| Ok(current().map(|p| unsafe { (*p).code }).unwrap_or(0)))
}

/// The domain (`virErrorDomain`) of the calling thread's last error, or
/// VIR_FROM_NONE (0) when there is none.
#[no_mangle]
pub extern "C" fn virGetLastErrorDomain() -> c_int {
    keep("virGetLastErrorDomain", 0, |_| Ok(current().map(|p| unsafe { (*p).domain }).unwrap_or(0)))
}

/// The message of the calling thread's last error: "no error" when there is
/// none, "unknown error" when it has no message. Never NULL. Owned by the
/// library, valid until the next nodedev call on this thread: do not free it.
#[no_mangle]
pub extern "C" fn virGetLastErrorMessage() -> *const c_char {
    const NO_ERROR: &[u8] = b"no error\0";
    const UNKNOWN: &[u8] = b"unknown error\0";
    keep("virGetLastErrorMessage", NO_ERROR.as_ptr().cast(), |_| {
        Ok(match current() {
            None => NO_ERROR.as_ptr().cast(),
            Some(p) if unsafe { (*p).message.is_null() } => UNKNOWN.as_ptr().cast(),
            Some(p) => unsafe { (*p).message },
        })
    })
}

/// Empty the calling thread's last error (virGetLastError then returns NULL).
#[no_mangle]
pub extern "C" fn virResetLastError() {
    keep("virResetLastError", (), |_| {
        reset_last();
        Ok(())
    })
}

/// A copy of the calling thread's last error, allocated for the caller.
///
/// Returns a new `virError` (an empty one, code VIR_ERR_OK, when there is no
/// last error), or NULL when memory is exhausted. The caller frees it with
/// virFreeError(). The last error itself is left as it is.
#[no_mangle]
pub extern "C" fn virSaveLastError() -> virErrorPtr {
    keep("virSaveLastError", ptr::null_mut(), |_| unsafe {
        let to = libc::calloc(1, std::mem::size_of::<virError>()) as virErrorPtr;
        if !to.is_null() {
            copy(current().unwrap_or(ptr::null_mut()), to);
        }
        Ok(to)
    })
}

/// Copy the calling thread's last error into `to`, a `virError` owned by the
/// caller (its previous contents are overwritten without being freed or read).
///
/// Returns the copied error's code, 0 when there is no last error (`to` is
/// then emptied), or -1 when `to` is NULL. The strings copied into `to`
/// belong to the caller: release them with virResetError(to).
#[no_mangle]
pub unsafe extern "C" fn virCopyLastError(to: virErrorPtr) -> c_int {
    keep("virCopyLastError", -1, |_| {
        if to.is_null() {
            return Ok(-1);
        }
        Ok(copy(current().unwrap_or(ptr::null_mut()), to))
    })
}

/// Free the strings of `err` (with free()) and set every field to zero /
/// NULL. `err` itself is not freed. NULL is ignored. Works on the thread's
/// last error too (virResetError(virGetLastError()) empties it).
#[no_mangle]
pub unsafe extern "C" fn virResetError(err: virErrorPtr) {
    keep("virResetError", (), |_| {
        if !err.is_null() {
            clear(err);
        }
        Ok(())
    })
}

/// Free an error returned by virSaveLastError(): its strings and the struct.
/// NULL is ignored. Never pass the thread's last error (virGetLastError) here.
#[no_mangle]
pub unsafe extern "C" fn virFreeError(err: virErrorPtr) {
    keep("virFreeError", (), |_| {
        if !err.is_null() {
            clear(err);
            libc::free(err.cast());
        }
        Ok(())
    })
}

/// The last error raised on `conn` by any thread (libvirt's per-connection
/// error): unlike the thread's last error, a later successful call does not
/// clear it; only the next error on `conn` or virConnResetLastError(conn)
/// does. Never NULL for a live connection (an empty error, code 0, when none
/// occurred, as libvirt); NULL when `conn` is NULL or not a live connection.
/// Owned by the connection: do not free it; another thread's error on the
/// same connection may overwrite it (copy it with virConnCopyLastError).
#[no_mangle]
pub unsafe extern "C" fn virConnGetLastError(conn: virConnectPtr) -> virErrorPtr {
    keep("virConnGetLastError", ptr::null_mut(), |_| {
        Ok(conn_from_ptr(conn).map_or(ptr::null_mut(), |c| c.last_error.err.get()))
    })
}

/// Empty the last error of `conn` (see virConnGetLastError); the thread's
/// last error is not changed. Does nothing when `conn` is NULL.
#[no_mangle]
pub unsafe extern "C" fn virConnResetLastError(conn: virConnectPtr) {
    keep("virConnResetLastError", (), |_| {
        if let Some(c) = conn_from_ptr(conn) {
            c.last_error.with(|e| clear(e));
        }
        Ok(())
    })
}

/// Copy the last error of `conn` (see virConnGetLastError) into `to`, owned
/// by the caller (overwritten without being read; release its strings with
/// virResetError). Returns the copied code (0: none), or -1 when `conn` or
/// `to` is NULL.
#[no_mangle]
pub unsafe extern "C" fn virConnCopyLastError(conn: virConnectPtr, to: virErrorPtr) -> c_int {
    keep("virConnCopyLastError", -1, |_| {
        if to.is_null() {
            return Ok(-1);
        }
        match conn_from_ptr(conn) {
            None => {
                to.write(EMPTY);
                Ok(-1)
            }
            Some(c) => Ok(c.last_error.with(|e| copy(e, to))),
        }
    })
}

/// Set the process-wide error callback: `handler` is called with `userData`
/// for every error raised on any thread whose connection has no callback of
/// its own (virConnSetErrorFunc). A NULL `handler` restores the default,
/// which prints `nodedev: MESSAGE` on stderr only when the environment
/// variable NODEDEV_DEBUG is set, and is otherwise silent.
#[no_mangle]
pub unsafe extern "C" fn virSetErrorFunc(userData: *mut c_void, handler: virErrorFunc) {
    keep("virSetErrorFunc", (), |_| {
        *GLOBAL_HANDLER.lock().unwrap_or_else(|e| e.into_inner()) = Handler::new(handler, userData);
        Ok(())
    })
}

/// Set the error callback for errors raised by calls on `conn` and on its
/// devices; it takes priority over virSetErrorFunc's. A NULL `handler`
/// removes it (the process-wide callback applies again). Does nothing when
/// `conn` is NULL. Errors of virConnectOpen (no connection yet) go to the
/// process-wide callback.
#[no_mangle]
pub unsafe extern "C" fn virConnSetErrorFunc(conn: virConnectPtr, userData: *mut c_void, handler: virErrorFunc) {
    keep("virConnSetErrorFunc", (), |_| {
        if let Some(c) = conn_from_ptr(conn) {
            *c.handler.lock().unwrap_or_else(|e| e.into_inner()) = Handler::new(handler, userData);
        }
        Ok(())
    })
}

/// Print `err` as `nodedev: MESSAGE` on stderr (whatever NODEDEV_DEBUG
/// says). NULL or an empty error prints nothing. Usable as a callback body.
#[no_mangle]
pub unsafe extern "C" fn virDefaultErrorFunc(err: virErrorPtr) {
    keep("virDefaultErrorFunc", (), |_| {
        print_error(err);
        Ok(())
    })
}

exports!(
    virGetLastError,
    virGetLastErrorCode,
    virGetLastErrorDomain,
    virGetLastErrorMessage,
    virResetLastError,
    virSaveLastError,
    virCopyLastError,
    virResetError,
    virFreeError,
    virConnGetLastError,
    virConnResetLastError,
    virConnCopyLastError,
    virSetErrorFunc,
    virConnSetErrorFunc,
    virDefaultErrorFunc,
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    macro_rules! offset_of {
        ($t:ty, $f:ident) => {{
            let e = EMPTY;
            (std::ptr::addr_of!(e.$f) as usize) - (std::ptr::addr_of!(e) as usize)
        }};
    }

    #[test]
    fn virerror_has_libvirts_layout_on_lp64() {
        if size_of::<*mut u8>() != 8 {
            return;
        }
        assert_eq!(offset_of!(virError, code), 0);
        assert_eq!(offset_of!(virError, domain), 4);
        assert_eq!(offset_of!(virError, message), 8);
        assert_eq!(offset_of!(virError, level), 16);
        assert_eq!(offset_of!(virError, conn), 24);
        assert_eq!(offset_of!(virError, dom), 32);
        assert_eq!(offset_of!(virError, str1), 40);
        assert_eq!(offset_of!(virError, str3), 56);
        assert_eq!(offset_of!(virError, int1), 64);
        assert_eq!(offset_of!(virError, int2), 68);
        assert_eq!(offset_of!(virError, net), 72);
        assert_eq!(size_of::<virError>(), 80);
        assert_eq!(size_of::<virErrorLevel>(), 4);
    }

    #[test]
    fn codes_match_the_core() {
        use crate::Error;
        let pairs = [
            (Error::InvalidArg(String::new()), virErrorNumber::VIR_ERR_INVALID_ARG),
            (Error::NoDevice(String::new()), virErrorNumber::VIR_ERR_NO_NODE_DEVICE),
            (Error::OperationInvalid(String::new()), virErrorNumber::VIR_ERR_OPERATION_INVALID),
            (Error::OperationFailed(String::new()), virErrorNumber::VIR_ERR_OPERATION_FAILED),
            (Error::Denied(String::new()), virErrorNumber::VIR_ERR_OPERATION_DENIED),
            (Error::Unsupported(String::new()), virErrorNumber::VIR_ERR_OPERATION_UNSUPPORTED),
            (Error::NoConnect(String::new()), virErrorNumber::VIR_ERR_NO_CONNECT),
            (Error::System(String::new()), virErrorNumber::VIR_ERR_SYSTEM_ERROR),
            (Error::Internal(String::new()), virErrorNumber::VIR_ERR_INTERNAL_ERROR),
            (Error::Timeout(String::new()), virErrorNumber::VIR_ERR_OPERATION_TIMEOUT),
        ];
        for (e, code) in pairs {
            assert_eq!(e.code(), code as c_int, "{e:?}");
            let dom = e.domain();
            assert!(dom == virErrorDomain::VIR_FROM_NONE as c_int || dom == virErrorDomain::VIR_FROM_NODEDEV as c_int);
        }
    }
}
