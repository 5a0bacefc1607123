//! Kernel uevents: the messages the driver core multicasts on netlink
//! (NETLINK_KOBJECT_UEVENT, group 1) for every add, remove, bind, unbind,
//! change and move of a device, and a reader of them.
//!
//! A message is `ACTION@DEVPATH\0` followed by `KEY=VALUE\0` pairs
//! (ACTION, DEVPATH, SUBSYSTEM, SEQNUM, DRIVER=... and the bus's own
//! variables). The real kernel's come from a netlink socket
//! ([`NetlinkUevents`]); the simulated kernel sends the same bytes
//! (`sim/uevent.rs`), so everything above reads both the same way.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Where a connection reads uevents from: a file descriptor that polls
/// readable when messages are waiting, and a non-blocking receive.
pub trait UeventSource: Send + Sync {
    /// Readable (POLLIN) while messages wait; owned by the source.
    fn fd(&self) -> RawFd;
    /// The next waiting message, or None when none is waiting (never blocks).
    fn recv(&self) -> io::Result<Option<Vec<u8>>>;
}

/// One parsed uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// "add", "remove", "bind", "unbind", "change", "move", "online", "offline".
    pub action: String,
    /// Below /sys, with a leading slash: `/devices/pci0000:00/0000:00:02.0`.
    pub devpath: String,
    /// "pci", "net", ...; empty when the message has none.
    pub subsystem: String,
    /// Every KEY=VALUE pair in message order (ACTION, DEVPATH... included).
    pub vars: Vec<(String, String)>,
}

impl Uevent {
    /// A kernel message; None for anything else (a udev daemon's
    /// "libudev" messages, a truncated or malformed one).
    pub fn parse(bytes: &[u8]) -> Option<Uevent> {
        let mut parts = bytes.split(|b| *b == 0).filter(|p| !p.is_empty());
        let header = std::str::from_utf8(parts.next()?).ok()?;
        let (action, devpath) = header.split_once('@')?;
        let mut vars = Vec::new();
        for p in parts {
            let s = std::str::from_utf8(p).ok()?;
            if let Some((k, v)) = s.split_once('=') {
                vars.push((k.to_string(), v.to_string()));
            }
        }
        let get = |k: &str| vars.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        // The header and ACTION/DEVPATH agree in every kernel message.
        if get("ACTION").is_some_and(|a| a != action) || get("DEVPATH").is_some_and(|d| d != devpath) {
            return None;
        }
        let subsystem = get("SUBSYSTEM").unwrap_or_default();
        Some(Uevent { action: action.to_string(), devpath: devpath.to_string(), subsystem, vars })
    }

    /// The value of a variable (`DRIVER`, `PCI_SLOT_NAME`...).
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The kernel's bytes for this event: the inverse of [`Uevent::parse`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{}@{}\0", self.action, self.devpath).into_bytes();
        for (k, v) in &self.vars {
            out.extend_from_slice(format!("{k}={v}\0").as_bytes());
        }
        out
    }
}

/// The kernel's uevent multicast group.
const KERNEL_GROUP: u32 = 1;
/// The kernel's UEVENT_BUFFER_SIZE is 2048; room for any message.
const MAX_MESSAGE: usize = 8192;

/// A netlink socket on the kernel's uevent group, non-blocking and
/// close-on-exec. Needs no privilege; receives only from now on.
pub struct NetlinkUevents {
    sock: OwnedFd,
}

impl NetlinkUevents {
    pub fn open() -> io::Result<NetlinkUevents> {
        // SAFETY: plain socket calls on a socket we own; the address struct is zeroed then filled.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_KOBJECT_UEVENT,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let sock = OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            addr.nl_groups = KERNEL_GROUP;
            let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            if libc::bind(fd, &addr as *const libc::sockaddr_nl as *const libc::sockaddr, len) < 0 {
                return Err(io::Error::last_os_error());
            }
            // A burst (hundreds of VFs created at once) must not overflow
            // the default buffer; the forced size needs CAP_NET_ADMIN, the
            // plain one is capped by rmem_max: try both.
            let size: libc::c_int = 4 << 20;
            let p = &size as *const libc::c_int as *const libc::c_void;
            let l = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, l) < 0 {
                libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, l);
            }
            Ok(NetlinkUevents { sock })
        }
    }
}

impl UeventSource for NetlinkUevents {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn recv(&self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            // SAFETY: recvfrom writes at most buf.len() bytes and the sender's address into `from`.
            let (n, from) = unsafe {
                let mut from: libc::sockaddr_nl = std::mem::zeroed();
                let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
                let n = libc::recvfrom(
                    self.sock.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    &mut from as *mut libc::sockaddr_nl as *mut libc::sockaddr,
                    &mut len,
                );
                (n, from)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(None),
                    Some(libc::EINTR) => continue,
                    // The buffer overflowed: some events are lost, the
                    // socket goes on with the next ones.
                    Some(libc::ENOBUFS) => {
                        crate::debug::log(format_args!("uevent socket overflowed: some kernel events were lost"));
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            // Only the kernel (port 0) speaks for the kernel.
            if from.nl_pid != 0 {
                continue;
            }
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_message_parses_and_round_trips() {
        let raw = b"bind@/devices/pci0000:00/0000:00:02.0\0ACTION=bind\0DEVPATH=/devices/pci0000:00/0000:00:02.0\0SUBSYSTEM=pci\0DRIVER=e1000e\0SEQNUM=7\0";
        let u = Uevent::parse(raw).unwrap();
        assert_eq!(u.action, "bind");
        assert_eq!(u.devpath, "/devices/pci0000:00/0000:00:02.0");
        assert_eq!(u.subsystem, "pci");
        assert_eq!(u.var("DRIVER"), Some("e1000e"));
        assert_eq!(u.to_bytes(), raw.to_vec());
    }

    #[test]
    fn other_messages_are_not_uevents() {
        assert_eq!(Uevent::parse(b"libudev\0\xfe\xed\xca\xfe"), None);
        assert_eq!(Uevent::parse(b""), None);
        assert_eq!(Uevent::parse(b"add@/devices/x\0ACTION=remove\0"), None);
    }

    #[test]
    fn the_real_socket_opens_without_privilege_and_is_quiet_when_nothing_happens() {
        // Read-only: a netlink listener changes nothing on the host.
        let s = NetlinkUevents::open().unwrap();
        assert!(s.fd() >= 0);
        // Nothing waits at once (unless the host changes a device right now:
        // then it is a kernel message, which parses).
        if let Some(m) = s.recv().unwrap() {
            assert!(Uevent::parse(&m).is_some());
        }
    }
}
