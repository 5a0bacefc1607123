//! The C ABI: libvirt's node-device API, with libvirt's names, C signatures,
//! enum values and `virError` layout, so C code written for libvirt's
//! nodedev calls compiles against `include/nodedev.h` and links with
//! `-lnodedev` unchanged.
//!
//! This module tree is the only `extern "C"` code. It converts arguments,
//! checks NULLs and flags, calls the core (`crate::host`, `crate::uri`) and
//! maps errors; it holds no device logic.
//!
//! - [`boundary`]: the one panic boundary every exported body runs in, and
//!   the argument helpers (C strings in, malloc'ed strings out, flags).
//! - [`error`]: `virError`, libvirt's error enums, the thread-local last error,
//!   error callbacks and the `virGetLastError` family.
//! - [`connect`]: `virConnect` handles (`virConnectOpen`, `virConnectClose`...).
//! - [`open_auth`]: `virConnectOpenAuth`, `virConnectAuthPtrDefault`, `virInitialize`.
//! - [`connect_info`]: what a connection tells about itself (versions, type,
//!   hostname, alive/secure/encrypted).
//! - [`close_callback`]: `virConnectRegisterCloseCallback` and its unregistering.
//! - [`nodedev`]: `virNodeDevice` handles and the device calls (enumerate,
//!   look up, XML, detach, reattach, reset).
//! - [`assign`]: guest assignment (prepare, release) and the authorization
//!   callback.
//! - [`recover`]: the report of interrupted operations finished or rolled back.
//! - [`persistent`]: persistent assignments (libvirt's autostart calls).
//! - [`sriov`]: SR-IOV provisioning (VFs straight onto a stub).
//! - [`mdev`]: mediated devices through libvirt's lifecycle calls (create,
//!   define, start, destroy, undefine, active, persistent).
//!
//! Exports: each module ends with `exports!(names...)`, the list of the
//! functions it exports; [`exported`] is their union. For each name the
//! macro binds the symbol to version node `NODEDEV_0.1.0` with a `.symver`
//! directive (rustc hands the linker its own anonymous version script for a
//! cdylib, so the node in `src/capi/nodedev.syms` alone would not be
//! applied); build.rs passes that script (`global: vir*; local: *;`) and the
//! soname `libnodedev.so.0`. Adding a function means adding its name to its
//! module's list; `tests/capi.rs` checks that the library exports exactly
//! these names, each versioned, and `tests/header.rs` that the header
//! declares every one of them.

#![allow(non_camel_case_types, non_snake_case, clippy::missing_safety_doc)]

/// The version node every exported symbol carries.
pub const SYMBOL_VERSION: &str = "NODEDEV_0.1.0";

/// `exports!(virFoo, virBar)`, once at the end of each module that defines
/// exported functions: the module's list of exported names. For each name it
/// emits `.symver NAME, NAME@@@NODEDEV_0.1.0`, which must be assembled in
/// the object file that defines NAME (in another one it would only make an
/// undefined reference): module-level assembly lands in its module's
/// codegen unit, with the module's functions, hence one invocation per
/// module rather than one for the crate.
macro_rules! exports {
    ($($name:ident),* $(,)? $(; data $($var:ident),+ $(,)?)?) => {
        $(
            #[cfg(target_os = "linux")]
            std::arch::global_asm!(concat!(
                ".symver ", stringify!($name), ", ", stringify!($name), "@@@NODEDEV_0.1.0"
            ));
            // Fails to compile when the name is not a function of this module.
            const _: () = {
                let _ = $name;
            };
        )*
        $($(
            // An exported variable (libvirt's VIR_EXPORT_VAR): same directive.
            #[cfg(target_os = "linux")]
            std::arch::global_asm!(concat!(
                ".symver ", stringify!($var), ", ", stringify!($var), "@@@NODEDEV_0.1.0"
            ));
        )+)?
        /// The functions and variables this module exports from the shared library.
        pub const EXPORTS: &[&str] = &[$(stringify!($name),)* $($(stringify!($var)),+)?];
        /// The variables among them.
        pub const EXPORTED_DATA: &[&str] = &[$($(stringify!($var)),+)?];
    };
}

pub mod assign;
pub mod boundary;
pub mod close_callback;
pub mod connect;
pub mod connect_info;
pub mod error;
pub mod mdev;
pub mod nodedev;
pub mod open_auth;
pub mod persistent;
pub mod recover;
pub mod sriov;

pub use assign::{virFreeCallback, virNodeDeviceAuthCallback, virNodeDeviceOperation};
pub use connect::{virConnect, virConnectPtr};
pub use error::{virError, virErrorDomain, virErrorFunc, virErrorLevel, virErrorNumber, virErrorPtr};
pub use nodedev::{virConnectListAllNodeDeviceFlags, virNodeDevice, virNodeDeviceNodedevFlags, virNodeDevicePtr};

/// Every symbol the shared library exports: the union of the modules'
/// `exports!` lists. Adding a function means adding its name to its
/// module's list.
pub fn exported() -> Vec<&'static str> {
    MODULES.iter().flat_map(|(all, _)| all.iter().copied()).collect()
}

/// The exported variables (data symbols, not functions) among [`exported`].
pub fn exported_data() -> Vec<&'static str> {
    MODULES.iter().flat_map(|(_, data)| data.iter().copied()).collect()
}

/// Each module's (`EXPORTS`, `EXPORTED_DATA`).
const MODULES: &[(&[&str], &[&str])] = &[
    (connect::EXPORTS, connect::EXPORTED_DATA),
    (open_auth::EXPORTS, open_auth::EXPORTED_DATA),
    (connect_info::EXPORTS, connect_info::EXPORTED_DATA),
    (close_callback::EXPORTS, close_callback::EXPORTED_DATA),
    (nodedev::EXPORTS, nodedev::EXPORTED_DATA),
    (assign::EXPORTS, assign::EXPORTED_DATA),
    (recover::EXPORTS, recover::EXPORTED_DATA),
    (persistent::EXPORTS, persistent::EXPORTED_DATA),
    (sriov::EXPORTS, sriov::EXPORTED_DATA),
    (mdev::EXPORTS, mdev::EXPORTED_DATA),
    (error::EXPORTS, error::EXPORTED_DATA),
];
