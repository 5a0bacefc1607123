//! An error on its way to C ([`Raised`]: libvirt's code and domain, and the
//! message), and the one place that maps the core's errors to libvirt's
//! numbers: the core (`crate::Error`) names classes of failure and knows
//! nothing of libvirt; which `virErrorNumber` and `virErrorDomain` a class
//! becomes is a fact of the C edge, kept here.

use super::virterror::{virErrorDomain, virErrorNumber};
use crate::Error;
use std::ffi::c_int;

/// An error on its way to the caller: libvirt's code and domain, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub code: c_int,
    pub domain: c_int,
    pub message: String,
}

impl Raised {
    pub fn new(code: virErrorNumber, domain: virErrorDomain, message: String) -> Raised {
        Raised { code: code as c_int, domain: domain as c_int, message }
    }
}

/// libvirt's number and domain for each class of core error.
pub trait LibvirtError {
    /// libvirt's `virErrorNumber` for this error.
    fn vir_code(&self) -> virErrorNumber;
    /// libvirt's `virErrorDomain`: VIR_FROM_NODEDEV, or VIR_FROM_NONE for connection errors.
    fn vir_domain(&self) -> virErrorDomain;

    /// [`LibvirtError::vir_code`] as the C `int` of `virError.code`.
    fn code(&self) -> c_int {
        self.vir_code() as c_int
    }

    /// [`LibvirtError::vir_domain`] as the C `int` of `virError.domain`.
    fn domain(&self) -> c_int {
        self.vir_domain() as c_int
    }
}

impl LibvirtError for Error {
    fn vir_code(&self) -> virErrorNumber {
        use virErrorNumber::*;
        match self {
            Error::Internal(_) => VIR_ERR_INTERNAL_ERROR,
            Error::NoConnect(_) => VIR_ERR_NO_CONNECT,
            Error::InvalidArg(_) => VIR_ERR_INVALID_ARG,
            Error::OperationFailed(_) => VIR_ERR_OPERATION_FAILED,
            Error::Denied(_) => VIR_ERR_OPERATION_DENIED,
            Error::System(_) => VIR_ERR_SYSTEM_ERROR,
            Error::NoDevice(_) => VIR_ERR_NO_NODE_DEVICE,
            Error::OperationInvalid(_) => VIR_ERR_OPERATION_INVALID,
            Error::Unsupported(_) => VIR_ERR_OPERATION_UNSUPPORTED,
            Error::Timeout(_) => VIR_ERR_OPERATION_TIMEOUT,
        }
    }

    fn vir_domain(&self) -> virErrorDomain {
        match self {
            Error::NoConnect(_) => virErrorDomain::VIR_FROM_NONE,
            _ => virErrorDomain::VIR_FROM_NODEDEV,
        }
    }
}

impl From<Error> for Raised {
    fn from(e: Error) -> Raised {
        Raised { code: e.code(), domain: e.domain(), message: e.message() }
    }
}

/// A core error as libvirt's code for the same condition, where the core's
/// class differs: `unsupported` replaces VIR_ERR_OPERATION_UNSUPPORTED.
pub(crate) fn with_unsupported_as(e: Error, unsupported: virErrorNumber) -> Raised {
    let replace = matches!(e, Error::Unsupported(_));
    let mut r = Raised::from(e);
    if replace {
        r.code = unsupported as c_int;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_get_libvirts_numbers() {
        let pairs = [
            (Error::InvalidArg(String::new()), 8),
            (Error::NoDevice(String::new()), 53),
            (Error::OperationInvalid(String::new()), 55),
            (Error::OperationFailed(String::new()), 9),
            (Error::Denied(String::new()), 29),
            (Error::Unsupported(String::new()), 84),
            (Error::NoConnect(String::new()), 5),
            (Error::System(String::new()), 38),
            (Error::Internal(String::new()), 1),
            (Error::Timeout(String::new()), 68),
        ];
        for (e, code) in pairs {
            assert_eq!(e.code(), code, "{e:?}");
            let want = if matches!(e, Error::NoConnect(_)) { 0 } else { 22 };
            assert_eq!(e.domain(), want, "{e:?}");
        }
    }

    #[test]
    fn raising_keeps_the_message_and_may_rename_unsupported() {
        let r = Raised::from(Error::Denied("no".into()));
        assert_eq!((r.code, r.domain, r.message.as_str()), (29, 22, "no"));
        let r = with_unsupported_as(Error::Unsupported("x".into()), virErrorNumber::VIR_ERR_ARGUMENT_UNSUPPORTED);
        assert_eq!(r.code, 74);
        let r = with_unsupported_as(Error::Denied("x".into()), virErrorNumber::VIR_ERR_ARGUMENT_UNSUPPORTED);
        assert_eq!(r.code, 29);
    }
}
