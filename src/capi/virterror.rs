//! libvirt's error vocabulary as C sees it (virterror.h): the `virError`
//! struct in libvirt's exact layout and the error enums with libvirt's names
//! and values. The leaf of `capi/`: plain data, importing no other module of
//! it, so every layer above can name an error without depending on how one
//! is raised.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

/// `virError.conn` as this leaf sees it: untyped, so that the leaf needs no
/// connection type (nodedev always leaves the field NULL). cbindgen resolves
/// the name to the public `virConnectPtr` of `connect`, so the header declares
/// the field `virConnectPtr conn` as libvirt does; the ABI is the same pointer.
#[allow(non_camel_case_types)]
type virConnectPtr = *mut c_void;

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

/// An empty error: code VIR_ERR_OK, every pointer NULL.
pub(crate) const EMPTY: virError = virError {
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
}
