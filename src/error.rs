//! The core's one error type: each variant is a class of failure a caller
//! acts on differently. The core knows nothing of libvirt's numbers; the C
//! edge maps each class to libvirt's code and domain
//! (`capi::raised::LibvirtError`), so callers compiled against libvirt's
//! virterror.h read our errors correctly.

use std::io;

/// A failure, by class. Releases may add classes (README.md, "Rust API
/// policy"), so a caller's `match` needs a `_` arm; the compiler enforces it:
///
/// ```compile_fail,E0004
/// fn class(e: &nodedev::Error) -> &'static str {
///     use nodedev::Error::*;
///     match e {
///         InvalidArg(_) | NoDevice(_) | OperationInvalid(_) | OperationFailed(_) | Denied(_) => "caller",
///         Unsupported(_) | NoConnect(_) | System(_) | Internal(_) | Timeout(_) => "host",
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A malformed or unacceptable argument (VIR_ERR_INVALID_ARG).
    #[error("{0}")]
    InvalidArg(String),
    /// No such device on this host (VIR_ERR_NO_NODE_DEVICE).
    #[error("{0}")]
    NoDevice(String),
    /// The device is not in a state where this operation applies (VIR_ERR_OPERATION_INVALID).
    #[error("{0}")]
    OperationInvalid(String),
    /// The kernel refused or did not do what was asked (VIR_ERR_OPERATION_FAILED).
    #[error("{0}")]
    OperationFailed(String),
    /// Forbidden by the connection or its policy (VIR_ERR_OPERATION_DENIED).
    #[error("{0}")]
    Denied(String),
    /// The host cannot do this at all (VIR_ERR_OPERATION_UNSUPPORTED).
    #[error("{0}")]
    Unsupported(String),
    /// The URI cannot be opened (VIR_ERR_NO_CONNECT).
    #[error("{0}")]
    NoConnect(String),
    /// A system call on our own files failed (VIR_ERR_SYSTEM_ERROR).
    #[error("{0}")]
    System(String),
    /// A bug in nodedev (VIR_ERR_INTERNAL_ERROR).
    #[error("{0}")]
    Internal(String),
    /// The kernel did not finish a change within the connection's time
    /// bound (a device held open through VFIO) (VIR_ERR_OPERATION_TIMEOUT).
    #[error("{0}")]
    Timeout(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// Append a sentence to the message, keeping the class.
    pub fn context_after(self, what: impl std::fmt::Display) -> Error {
        self.map_message(|m| format!("{m}; {what}"))
    }

    fn map_message(self, f: impl FnOnce(String) -> String) -> Error {
        match self {
            Error::InvalidArg(m) => Error::InvalidArg(f(m)),
            Error::NoDevice(m) => Error::NoDevice(f(m)),
            Error::OperationInvalid(m) => Error::OperationInvalid(f(m)),
            Error::OperationFailed(m) => Error::OperationFailed(f(m)),
            Error::Denied(m) => Error::Denied(f(m)),
            Error::Unsupported(m) => Error::Unsupported(f(m)),
            Error::NoConnect(m) => Error::NoConnect(f(m)),
            Error::System(m) => Error::System(f(m)),
            Error::Internal(m) => Error::Internal(f(m)),
            Error::Timeout(m) => Error::Timeout(f(m)),
        }
    }

    /// Prefix the message with context, keeping the class.
    pub fn context(self, what: impl std::fmt::Display) -> Error {
        self.map_message(|m| format!("{what}: {m}"))
    }
}

/// A failed sysfs access, described for a person: which file, what errno.
#[doc(hidden)]
pub fn sysfs_error(op: &str, path: &str, err: &io::Error) -> Error {
    Error::OperationFailed(format!("{op} /sys/{path} failed: {err}"))
}
