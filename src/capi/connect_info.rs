//! What a connection tells about itself: versions, driver type, host name,
//! liveness and transport security, with libvirt's checks and answers for a
//! local (in-process or unix-socket) connection.

use super::boundary::{api, Call, Raised};
use super::connect::{conn_arg, virConnectPtr};
use super::virterror::{virErrorDomain, virErrorNumber};
use std::ffi::{c_char, c_int, c_ulong, CStr};
use std::ptr;

const DOMAIN: virErrorDomain = virErrorDomain::VIR_FROM_NONE;

/// major * 1,000,000 + minor * 1,000 + micro, libvirt's version encoding.
fn encode(major: u64, minor: u64, micro: u64) -> c_ulong {
    (major * 1_000_000 + minor * 1_000 + micro) as c_ulong
}

/// nodedev's own version, from Cargo.toml.
fn library_version() -> c_ulong {
    let part = |s: &str| s.parse::<u64>().unwrap_or(0);
    encode(
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

/// The leading "MAJOR.MINOR.MICRO" of a kernel release ("6.1.0-18-amd64"),
/// missing parts 0, trailing text ignored, as libvirt parses it.
fn parse_release(release: &str) -> Option<c_ulong> {
    let mut parts = [0u64; 3];
    let mut rest = release;
    for (i, part) in parts.iter_mut().enumerate() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return (i > 0).then(|| encode(parts[0], parts[1], parts[2]));
        }
        *part = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        match rest.strip_prefix('.') {
            Some(r) => rest = r,
            None => break,
        }
    }
    Some(encode(parts[0], parts[1], parts[2]))
}

/// The running kernel's version (uname), as libvirt's LXC driver reports
/// for its "hypervisor".
fn kernel_version(call: &Call) -> Result<c_ulong, Raised> {
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    let release = if unsafe { libc::uname(&mut uts) } == 0 {
        unsafe { CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    parse_release(&release).ok_or_else(|| {
        Raised::new(
            virErrorNumber::VIR_ERR_INTERNAL_ERROR,
            call.domain,
            format!("{}: cannot parse the kernel release '{release}'", call.func),
        )
    })
}

/// Store `value` in `*out`, NULL `out` refused with VIR_ERR_INVALID_ARG naming `arg`.
unsafe fn store(
    call: &Call,
    arg: &str,
    out: *mut c_ulong,
    value: impl FnOnce() -> Result<c_ulong, Raised>,
) -> Result<c_int, Raised> {
    if out.is_null() {
        return Err(call.invalid_arg(format_args!("{arg} must not be NULL")));
    }
    *out = value()?;
    Ok(0)
}

/// The library's version in `*libVer` (major * 1,000,000 + minor * 1,000 +
/// micro, from nodedev's own version number) and, when `typeVer` is not
/// NULL, the same number in `*typeVer`: like libvirt, `type` is ignored
/// (it may be NULL or any string).
///
/// Returns 0, or -1 when `libVer` is NULL: libvirt then reports no error of
/// its own, so the last error is its generic one, VIR_ERR_INTERNAL_ERROR
/// (domain VIR_FROM_NONE) "An error occurred, but the cause is unknown".
#[no_mangle]
pub unsafe extern "C" fn virGetVersion(libVer: *mut c_ulong, r#type: *const c_char, typeVer: *mut c_ulong) -> c_int {
    let _ = r#type;
    api("virGetVersion", DOMAIN, -1, |_| {
        if libVer.is_null() {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_INTERNAL_ERROR,
                DOMAIN,
                "An error occurred, but the cause is unknown".to_string(),
            ));
        }
        *libVer = library_version();
        if !typeVer.is_null() {
            *typeVer = library_version();
        }
        Ok(0)
    })
}

/// The version of the library behind `conn` (as virGetVersion's `libVer`)
/// in `*libVer`.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG
/// (`libVer` NULL).
#[no_mangle]
pub unsafe extern "C" fn virConnectGetLibVersion(conn: virConnectPtr, libVer: *mut c_ulong) -> c_int {
    api("virConnectGetLibVersion", DOMAIN, -1, |call| {
        conn_arg(call, conn)?;
        store(call, "libVer", libVer, || Ok(library_version()))
    })
}

/// The "hypervisor" version in `*hvVer`. nodedev drives the kernel, so on a
/// real host this is the running kernel's version (from uname: 6.1.0 gives
/// 6001000), as libvirt's LXC driver reports; libvirt's node-device daemon
/// itself has no version call (VIR_ERR_NO_SUPPORT). On a simulated host
/// (test:///...) it is 2, as libvirt's test driver answers.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG
/// (`hvVer` NULL), VIR_ERR_INTERNAL_ERROR (unparsable kernel release).
#[no_mangle]
pub unsafe extern "C" fn virConnectGetVersion(conn: virConnectPtr, hvVer: *mut c_ulong) -> c_int {
    api("virConnectGetVersion", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        let simulated = c.uri().starts_with("test:");
        store(call, "hvVer", hvVer, || if simulated { Ok(2) } else { kernel_version(call) })
    })
}

/// The connection's driver name: "NODEDEV" (libvirt answers its driver's
/// name, e.g. "QEMU"). The string is static: do not free it.
///
/// NULL on error: VIR_ERR_INVALID_CONN.
#[no_mangle]
pub unsafe extern "C" fn virConnectGetType(conn: virConnectPtr) -> *const c_char {
    api("virConnectGetType", DOMAIN, ptr::null(), |call| {
        conn_arg(call, conn)?;
        Ok(c"NODEDEV".as_ptr())
    })
}

/// The name of the host (gethostname(); for a simulated host, this
/// machine's name too, as libvirt's test driver answers).
///
/// Returns a string the caller frees with free(), or NULL on error:
/// VIR_ERR_INVALID_CONN, VIR_ERR_SYSTEM_ERROR (gethostname failed),
/// VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virConnectGetHostname(conn: virConnectPtr) -> *mut c_char {
    api("virConnectGetHostname", DOMAIN, ptr::null_mut(), |call| {
        conn_arg(call, conn)?;
        let mut buf = [0 as c_char; 256];
        if libc::gethostname(buf.as_mut_ptr(), buf.len() - 1) != 0 {
            let err = std::io::Error::last_os_error();
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_SYSTEM_ERROR,
                call.domain,
                format!("{}: cannot find the host name: {err}", call.func),
            ));
        }
        let name = CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned();
        call.dup(&name)
    })
}

/// Whether `conn` is alive: 1 (a local connection cannot be dropped by a
/// server), or -1 with VIR_ERR_INVALID_CONN.
#[no_mangle]
pub unsafe extern "C" fn virConnectIsAlive(conn: virConnectPtr) -> c_int {
    api("virConnectIsAlive", DOMAIN, -1, |call| {
        conn_arg(call, conn)?;
        Ok(1)
    })
}

/// Whether `conn` is safe from eavesdropping: 1, as libvirt answers for a
/// local (unix socket or in-process) connection; -1 with VIR_ERR_INVALID_CONN.
#[no_mangle]
pub unsafe extern "C" fn virConnectIsSecure(conn: virConnectPtr) -> c_int {
    api("virConnectIsSecure", DOMAIN, -1, |call| {
        conn_arg(call, conn)?;
        Ok(1)
    })
}

/// Whether `conn` is encrypted: 0, as libvirt answers for a local
/// connection (nothing travels over a network); -1 with VIR_ERR_INVALID_CONN.
#[no_mangle]
pub unsafe extern "C" fn virConnectIsEncrypted(conn: virConnectPtr) -> c_int {
    api("virConnectIsEncrypted", DOMAIN, -1, |call| {
        conn_arg(call, conn)?;
        Ok(0)
    })
}

exports!(
    virGetVersion,
    virConnectGetLibVersion,
    virConnectGetVersion,
    virConnectGetType,
    virConnectGetHostname,
    virConnectIsAlive,
    virConnectIsSecure,
    virConnectIsEncrypted,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_parse_as_libvirt_does() {
        assert_eq!(parse_release("6.1.0-18-amd64"), Some(6_001_000));
        assert_eq!(parse_release("5.15.133+"), Some(5_015_133));
        assert_eq!(parse_release("6.8"), Some(6_008_000));
        assert_eq!(parse_release("4"), Some(4_000_000));
        assert_eq!(parse_release(""), None);
        assert_eq!(parse_release("x.1"), None);
    }

    #[test]
    fn library_version_follows_cargo_toml() {
        let v: Vec<u64> = env!("CARGO_PKG_VERSION").split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(library_version(), encode(v[0], v[1], v[2]));
    }
}
