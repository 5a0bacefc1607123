//! The C ABI: libvirt's node-device API, with libvirt's names, C signatures,
//! enum values and `virError` layout, so C code written for libvirt's
//! nodedev calls compiles against `include/nodedev.h` and links with
//! `-lnodedev` unchanged.
//!
//! This module tree is the only `extern "C"` code. It converts arguments,
//! checks NULLs and flags, calls the core (`crate::host`, `crate::uri`) and
//! maps errors; it holds no device logic.
//!
//! The modules form a stack: each imports only modules of its own layer or
//! below, never one above, and no two import each other
//! (`tests/structure.rs` checks this from the `use` lines, against
//! [`LAYERS`]). From the bottom:
//!
//! 0. [`virterror`]: libvirt's error enums and the `virError` layout;
//!    [`cmem`]: malloc'ed strings and arrays for C (failures as NULL);
//!    [`callback`]: a caller's `opaque` data and its virFreeCallback.
//! 1. [`raised`]: an error on its way to C, and the mapping of the core's
//!    errors (`crate::Error`) to libvirt's numbers.
//! 2. [`last_error`]: the thread's and connections' last errors, raising
//!    and the error callbacks.
//! 3. [`boundary`]: the one panic boundary every exported body runs in, and
//!    the argument helpers (C strings in, malloc'ed strings and string
//!    arrays out, out of memory, flags).
//! 4. [`handle`]: handle argument checks, Ref and Free for every kind of handle.
//! 5. [`connect`]: `virConnect` handles (`virConnectOpen`, `virConnectClose`...)
//!    and their close callbacks.
//! 6. [`nodedev`]: `virNodeDevice` handles and the device calls (enumerate,
//!    look up, XML, detach, reattach, reset); [`error`]: the
//!    `virGetLastError` family; [`open_auth`]: `virConnectOpenAuth`,
//!    `virConnectAuthPtrDefault`, `virInitialize`; [`connect_info`]: what a
//!    connection tells about itself; [`close_callback`]:
//!    `virConnectRegisterCloseCallback` and its unregistering;
//!    [`event_loop`]: libvirt's event loop API and its default loop.
//! 7. [`node_device_events`]: node-device event callbacks (on the loop of
//!    `event_loop`, with handles of `nodedev`), and the descriptor +
//!    dispatch extension for a daemon's own loop; the connection keeps
//!    their state as a `connect::ConnAttachment` and closes it.
//! 8. The calls on devices (any module not in [`LAYERS`] is taken to be
//!    here): [`assign`] (prepare, release, the authorization callback),
//!    [`recover`], [`persistent`] (libvirt's autostart calls, for PCI
//!    functions and mdevs), [`sriov`], [`mdev`] (mediated devices through
//!    libvirt's lifecycle calls: create, define, start, destroy, undefine,
//!    active, persistent).
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
pub mod callback;
pub mod close_callback;
pub mod cmem;
pub mod connect;
pub mod connect_info;
pub mod error;
pub mod event_loop;
pub mod handle;
pub mod last_error;
pub mod mdev;
pub mod node_device_events;
pub mod nodedev;
pub mod open_auth;
pub mod persistent;
pub mod raised;
pub mod recover;
pub mod scsi_host;
pub mod sriov;
pub mod virterror;

/// The layers of `capi/`, bottom first (see the module documentation): a
/// module may import modules of its own layer or below. A module not listed
/// is taken to be in the top layer, above all of these.
pub const LAYERS: &[&[&str]] = &[
    &["virterror", "cmem", "callback"],
    &["raised"],
    &["last_error"],
    &["boundary"],
    &["handle"],
    &["connect"],
    &["nodedev", "error", "open_auth", "connect_info", "close_callback", "event_loop"],
    &["node_device_events"],
];

pub use assign::{virFreeCallback, virNodeDeviceAuthCallback, virNodeDeviceOperation};
pub use connect::{virConnect, virConnectPtr};
pub use nodedev::{virConnectListAllNodeDeviceFlags, virNodeDevice, virNodeDeviceNodedevFlags, virNodeDevicePtr};
pub use raised::LibvirtError;
pub use virterror::{virError, virErrorDomain, virErrorFunc, virErrorLevel, virErrorNumber, virErrorPtr};

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
    // fidelity: libvirt-nodedev.h's SCSI host lookup (always no match).
    (scsi_host::EXPORTS, scsi_host::EXPORTED_DATA),
    (event_loop::EXPORTS, event_loop::EXPORTED_DATA),
    (node_device_events::EXPORTS, node_device_events::EXPORTED_DATA),
    (error::EXPORTS, error::EXPORTED_DATA),
];
