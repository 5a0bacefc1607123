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
    /// The next waiting message, or None when none is waiting (never
    /// blocks). One datagram per call: a message that did not come from the
    /// kernel is dropped and given as an empty one, so a caller that bounds
    /// its calls bounds its work whatever a sender floods it with.
    /// Err(ENOBUFS): messages were lost (the buffer overflowed) since the
    /// last call; the next call goes on with what is queued.
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
                    // socket goes on with the next ones; the reader decides.
                    Some(libc::ENOBUFS) => {
                        crate::debug::log(format_args!("uevent socket overflowed: some kernel events were lost"));
                        return Err(e);
                    }
                    _ => return Err(e),
                }
            }
            // Only the kernel speaks for the kernel: port 0, to its multicast
            // group. Any local process may unicast to this socket (that
            // needs no privilege); its port is never 0 and its group none.
            if from.nl_pid != 0 || from.nl_groups & KERNEL_GROUP == 0 {
                return Ok(Some(Vec::new()));
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
    fn a_message_another_process_sends_to_the_socket_is_dropped() {
        // Read-only for the host: a unicast between two sockets of this test.
        let listener = NetlinkUevents::open().unwrap();
        // SAFETY: plain socket calls on sockets we own; address structs zeroed then filled.
        unsafe {
            let mut me: libc::sockaddr_nl = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            assert_eq!(libc::getsockname(listener.fd(), &mut me as *mut _ as *mut libc::sockaddr, &mut len), 0);
            let fd =
                libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_KOBJECT_UEVENT);
            assert!(fd >= 0);
            let forger = OwnedFd::from_raw_fd(fd);
            let forged = b"add@/devices/pci0000:00/0000:00:02.0\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:02.0\0SUBSYSTEM=pci\0SEQNUM=1\0";
            let mut to: libc::sockaddr_nl = std::mem::zeroed();
            to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            to.nl_pid = me.nl_pid;
            let sent = libc::sendto(
                forger.as_raw_fd(),
                forged.as_ptr().cast(),
                forged.len(),
                0,
                &to as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            );
            assert_eq!(sent, forged.len() as isize, "{}", io::Error::last_os_error());
        }
        // The forged message is read and dropped; a kernel message that
        // happens to arrive meanwhile parses as one.
        let mut dropped = false;
        for _ in 0..64 {
            match listener.recv().unwrap() {
                Some(m) if m.is_empty() => {
                    dropped = true;
                    break;
                }
                Some(m) => assert!(Uevent::parse(&m).is_some_and(|u| u.var("SEQNUM") != Some("1"))),
                None => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        assert!(dropped, "the forged message never came or was taken for the kernel's");
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
