//! Opening with authentication (virConnectOpenAuth) and libvirt's default
//! authentication data. nodedev's connections are local and need no
//! credentials: any `auth` is accepted and its callback is never called.

use super::boundary::api;
use super::connect::{open, virConnectPtr};
use super::virterror::virErrorDomain;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::ptr::{self, addr_of_mut};

/// Flags of virConnectOpenAuth (libvirt's values).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectFlags {
    /// A read-only connection, as virConnectOpenReadOnly opens.
    VIR_CONNECT_RO = 1,
    /// Do not resolve URI aliases: accepted; nodedev has no aliases.
    VIR_CONNECT_NO_ALIASES = 1 << 1,
}

/// Kinds of credential an authentication callback may be asked for (libvirt's values).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectCredentialType {
    /// Identity to act as.
    VIR_CRED_USERNAME = 1,
    /// Identity to authorize as.
    VIR_CRED_AUTHNAME = 2,
    /// RFC 1766 languages, comma separated.
    VIR_CRED_LANGUAGE = 3,
    /// Client-supplied nonce.
    VIR_CRED_CNONCE = 4,
    /// Passphrase secret.
    VIR_CRED_PASSPHRASE = 5,
    /// Challenge response, echoed.
    VIR_CRED_ECHOPROMPT = 6,
    /// Challenge response, not echoed.
    VIR_CRED_NOECHOPROMPT = 7,
    /// Authentication realm.
    VIR_CRED_REALM = 8,
    /// Externally managed credential.
    VIR_CRED_EXTERNAL = 9,
}

/// One credential asked of an authentication callback (libvirt's layout).
#[repr(C)]
pub struct virConnectCredential {
    /// One of virConnectCredentialType.
    pub r#type: c_int,
    /// Prompt to show to the user.
    pub prompt: *const c_char,
    /// Additional challenge to show.
    pub challenge: *const c_char,
    /// Optional default result.
    pub defresult: *const c_char,
    /// The answer, malloc'ed by the callback (NULL when none).
    pub result: *mut c_char,
    /// Length of `result`.
    pub resultlen: c_uint,
}

/// Pointer to a credential.
pub type virConnectCredentialPtr = *mut virConnectCredential;

/// An authentication callback: fills `cred[0..ncred]`; returns 0 when all
/// were filled, -1 otherwise.
pub type virConnectAuthCallbackPtr =
    Option<unsafe extern "C" fn(cred: virConnectCredentialPtr, ncred: c_uint, cbdata: *mut c_void) -> c_int>;

/// Authentication data for virConnectOpenAuth (libvirt's layout).
#[repr(C)]
pub struct virConnectAuth {
    /// The credential types `cb` supports.
    pub credtype: *mut c_int,
    /// Number of entries of `credtype`.
    pub ncredtype: c_uint,
    /// Callback collecting credentials (nodedev never calls it).
    pub cb: virConnectAuthCallbackPtr,
    /// Data passed to `cb`.
    pub cbdata: *mut c_void,
}

/// Pointer to authentication data.
pub type virConnectAuthPtr = *mut virConnectAuth;

/// The default callback: nodedev asks for no credentials, so it has none to
/// collect; called directly it answers none (each `result` NULL) and -1.
unsafe extern "C" fn no_credentials(cred: virConnectCredentialPtr, ncred: c_uint, _: *mut c_void) -> c_int {
    if !cred.is_null() {
        for i in 0..ncred as usize {
            let c = &mut *cred.add(i);
            c.result = ptr::null_mut();
            c.resultlen = 0;
        }
    }
    -1
}

static mut DEFAULT_CRED_TYPES: [c_int; 6] = [
    virConnectCredentialType::VIR_CRED_AUTHNAME as c_int,
    virConnectCredentialType::VIR_CRED_ECHOPROMPT as c_int,
    virConnectCredentialType::VIR_CRED_REALM as c_int,
    virConnectCredentialType::VIR_CRED_PASSPHRASE as c_int,
    virConnectCredentialType::VIR_CRED_NOECHOPROMPT as c_int,
    virConnectCredentialType::VIR_CRED_EXTERNAL as c_int,
];

static mut DEFAULT_AUTH: virConnectAuth = virConnectAuth {
    credtype: addr_of_mut!(DEFAULT_CRED_TYPES) as *mut c_int,
    ncredtype: 6,
    cb: Some(no_credentials),
    cbdata: ptr::null_mut(),
};

/// libvirt's default authentication data, for code that passes it to
/// virConnectOpenAuth: the credential types libvirt's command-line default
/// offers (authname, echo prompt, realm, passphrase, no-echo prompt,
/// external) and a callback that collects nothing: nodedev never asks for
/// credentials, so it never calls it; called directly, it sets each
/// `result` to NULL and returns -1 (no prompt on the terminal). Owned by the
/// library: do not free or modify it.
#[no_mangle]
pub static mut virConnectAuthPtrDefault: virConnectAuthPtr = addr_of_mut!(DEFAULT_AUTH);

/// Initialize the library: nothing to do (nodedev initializes itself on
/// first use); kept for code written for libvirt. Returns 0.
#[no_mangle]
pub extern "C" fn virInitialize() -> c_int {
    api("virInitialize", virErrorDomain::VIR_FROM_NONE, -1, |_| Ok(0))
}

const OPEN_FLAGS: c_uint =
    virConnectFlags::VIR_CONNECT_RO as c_uint | virConnectFlags::VIR_CONNECT_NO_ALIASES as c_uint;

/// Open a connection as virConnectOpen() (`name` as there), read-only with
/// VIR_CONNECT_RO in `flags` (as virConnectOpenReadOnly()).
///
/// `auth` may be NULL or any authentication data, e.g.
/// virConnectAuthPtrDefault: nodedev's connections are local and need no
/// credentials, so `auth` is never read and its callback never called.
/// `flags`: 0 or VIR_CONNECT_RO and/or VIR_CONNECT_NO_ALIASES (accepted;
/// nodedev has no URI aliases). `name` is only read during the call.
///
/// Returns a new connection, released by the caller with virConnectClose(),
/// or NULL on error: VIR_ERR_INVALID_ARG (other flags, domain
/// VIR_FROM_NONE; libvirt reports it in the opening driver's domain),
/// VIR_ERR_NO_CONNECT (the URI cannot be opened).
#[no_mangle]
pub unsafe extern "C" fn virConnectOpenAuth(
    name: *const c_char,
    auth: virConnectAuthPtr,
    flags: c_uint,
) -> virConnectPtr {
    let _ = auth;
    api("virConnectOpenAuth", virErrorDomain::VIR_FROM_NONE, ptr::null_mut(), |call| {
        call.check_flags(flags, OPEN_FLAGS)?;
        open(call, name, flags & virConnectFlags::VIR_CONNECT_RO as c_uint != 0)
    })
}

exports!(virConnectOpenAuth, virInitialize; data virConnectAuthPtrDefault);
