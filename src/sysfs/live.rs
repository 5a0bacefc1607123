//! Facts of the running host that are not in sysfs, and the one link change
//! nodedev makes: the parsers of /proc/net/route, /proc/net/ipv6_route,
//! /proc/self/mountinfo and /proc/swaps (pure, tested on fixed text),
//! addresses from getifaddrs(3), and RTM_NEWLINK over a netlink socket.
//! Only `HostSysfs` for the live "/" calls the parts that touch the host.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;

/// Routes of `iface` in /proc/net/route: "default" or "NET/LEN".
pub fn ipv4_routes(text: &str, iface: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 || f[0] != iface {
            continue;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(dest), Some(flags), Some(mask)) = (hex(f[1]), hex(f[3]), hex(f[7])) else { continue };
        if flags & 1 == 0 {
            continue; // not RTF_UP
        }
        // The kernel prints the big-endian word as a native integer.
        let len = mask.count_ones();
        out.push(if len == 0 {
            "default".to_string()
        } else {
            format!("{}/{len}", Ipv4Addr::from(dest.to_ne_bytes()))
        });
    }
    out.dedup();
    out
}

/// Routes of `iface` in /proc/net/ipv6_route, without link-local (fe80::/64),
/// multicast (ff00::/8) and local or anycast routes of its own addresses.
pub fn ipv6_routes(text: &str, iface: &str) -> Vec<String> {
    const RTF_UP: u32 = 0x1;
    const RTF_ANYCAST: u32 = 0x0010_0000;
    const RTF_LOCAL: u32 = 0x8000_0000;
    let mut out = Vec::new();
    // dest plen src plen nexthop metric refcnt use flags iface
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 10 || f[9] != iface {
            continue;
        }
        let Ok(dest) = u128::from_str_radix(f[0], 16) else { continue };
        let (Ok(len), Ok(flags)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[8], 16)) else { continue };
        let dest = Ipv6Addr::from(dest);
        if flags & RTF_UP == 0 || flags & (RTF_LOCAL | RTF_ANYCAST) != 0 {
            continue;
        }
        if (dest.segments()[0] & 0xffc0 == 0xfe80 && len >= 10) || dest.segments()[0] >> 8 == 0xff {
            continue;
        }
        out.push(if len == 0 { "default".to_string() } else { format!("{dest}/{len}") });
    }
    out.dedup();
    out
}

/// Undo the octal escapes (`\040` for a space) of /proc's path fields.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (MAJ:MIN, mount point) of each line of /proc/self/mountinfo.
pub fn mountinfo(text: &str) -> Vec<(String, String)> {
    // id parent MAJ:MIN root mountpoint options ...
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 4).then(|| (f[2].to_string(), unescape(f[4])))
        })
        .collect()
}

/// (path, is a file) of each active area in /proc/swaps.
pub fn proc_swaps(text: &str) -> Vec<(String, bool)> {
    // Filename Type Size Used Priority
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 2).then(|| (unescape(f[0]), f[1] == "file"))
        })
        .collect()
}

/// MAJ:MIN of the block device a swap area is (a partition: the device
/// node's number) or lives on (a file: its filesystem's device).
pub fn device_number(path: &str, file: bool) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    let dev = if file { m.dev() } else { m.rdev() };
    // glibc's encoding of dev_t.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    Some(format!("{major}:{minor}"))
}

/// Addresses of `iface` from getifaddrs(3) with their prefix length,
/// IPv6 link-local left out.
pub fn addresses_of(iface: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below; each
    // node's ifa_addr and ifa_netmask point to sockaddrs of the family the
    // address declares (or are null).
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut p = list;
        while !p.is_null() {
            let ifa = &*p;
            p = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || std::ffi::CStr::from_ptr(ifa.ifa_name).to_bytes() != iface.as_bytes() {
                continue;
            }
            let mask = ifa.ifa_netmask;
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let a = Ipv4Addr::from(u32::from_be((*(ifa.ifa_addr as *const libc::sockaddr_in)).sin_addr.s_addr));
                    let len = if mask.is_null() {
                        32
                    } else {
                        (*(mask as *const libc::sockaddr_in)).sin_addr.s_addr.count_ones()
                    };
                    out.push(format!("{a}/{len}"));
                }
                libc::AF_INET6 => {
                    let a = Ipv6Addr::from((*(ifa.ifa_addr as *const libc::sockaddr_in6)).sin6_addr.s6_addr);
                    let len = if mask.is_null() {
                        128
                    } else {
                        u128::from_be_bytes((*(mask as *const libc::sockaddr_in6)).sin6_addr.s6_addr).count_ones()
                    };
                    if a.segments()[0] & 0xffc0 != 0xfe80 {
                        out.push(format!("{a}/{len}"));
                    }
                }
                _ => {}
            }
        }
        libc::freeifaddrs(list);
    }
    out
}

fn index_of(iface: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(iface).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated name; the call only reads it.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::from_raw_os_error(libc::ENODEV)),
        i => Ok(i),
    }
}

/// `ip link set IF master M` / `nomaster`.
pub fn set_master(iface: &str, master: Option<&str>) -> io::Result<()> {
    let index = index_of(iface)?;
    let master = match master {
        Some(m) => index_of(m)?,
        None => 0,
    };
    setlink(index, 0, 0, Some(master))
}

/// `ip link set IF up` / `down`.
pub fn set_link_up(iface: &str, up: bool) -> io::Result<()> {
    let flags = if up { libc::IFF_UP as u32 } else { 0 };
    setlink(index_of(iface)?, flags, libc::IFF_UP as u32, None)
}

/// One RTM_NEWLINK request on a fresh NETLINK_ROUTE socket, and its ack.
/// The kernel answers at once; the receive timeout only guards against a
/// lost answer, so the caller is never held.
fn setlink(index: u32, flags: u32, change: u32, master: Option<u32>) -> io::Result<()> {
    let mut msg: Vec<u8> = Vec::with_capacity(40);
    let len: u32 = 16 + 16 + if master.is_some() { 8 } else { 0 };
    // struct nlmsghdr
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
                                                // struct ifinfomsg
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    msg.extend_from_slice(&0u16.to_ne_bytes()); // type
    msg.extend_from_slice(&(index as i32).to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&change.to_ne_bytes());
    if let Some(m) = master {
        // struct rtattr IFLA_MASTER, u32 payload
        msg.extend_from_slice(&8u16.to_ne_bytes());
        msg.extend_from_slice(&libc::IFLA_MASTER.to_ne_bytes());
        msg.extend_from_slice(&m.to_ne_bytes());
    }
    // SAFETY: plain socket calls on a descriptor this function owns and
    // closes; buffers are valid for the lengths given.
    unsafe {
        let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let close = |r: io::Result<()>| {
            libc::close(fd);
            r
        };
        let tv = libc::timeval { tv_sec: 2, tv_usec: 0 };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
        kernel.nl_family = libc::AF_NETLINK as u16;
        let sent = libc::sendto(
            fd,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        );
        if sent < 0 {
            return close(Err(io::Error::last_os_error()));
        }
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return close(Err(e));
            }
            let n = n as usize;
            if n < 20 {
                return close(Err(io::Error::from_raw_os_error(libc::EPROTO)));
            }
            let kind = u16::from_ne_bytes([buf[4], buf[5]]);
            if kind != libc::NLMSG_ERROR as u16 {
                continue;
            }
            let errno = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            return close(if errno == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-errno)) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_routes_name_the_default_and_networks() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            br0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            br0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            eth9\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            br0\t0000010A\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        if cfg!(target_endian = "little") {
            assert_eq!(ipv4_routes(text, "br0"), ["default", "10.0.0.0/24"]);
            assert_eq!(ipv4_routes(text, "eth9"), ["192.168.0.0/16"]);
        }
        assert!(ipv4_routes(text, "eth0").is_empty());
        assert!(ipv4_routes("Iface\n", "br0").is_empty());
    }

    #[test]
    fn ipv6_routes_leave_out_link_local_multicast_and_local() {
        let text = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000003 br0\n\
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 br0\n\
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 br0\n\
20010db8000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001 br0\n\
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001 br0\n\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert_eq!(ipv6_routes(text, "br0"), ["default", "2001:db8::/64"]);
        assert!(ipv6_routes(text, "eth0").is_empty());
    }

    #[test]
    fn mountinfo_and_swaps_unescape_paths() {
        let info = "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n\
                    40 22 259:3 / /mnt/my\\040disk rw - xfs /dev/nvme0n1p3 rw\n";
        assert_eq!(
            mountinfo(info),
            [("259:2".to_string(), "/".to_string()), ("259:3".to_string(), "/mnt/my disk".to_string())]
        );
        let swaps = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                     /dev/nvme0n1p3                          partition\t8388604\t\t0\t\t-2\n\
                     /mnt/my\\040disk/swapfile                file\t\t1048572\t\t0\t\t-3\n";
        assert_eq!(
            proc_swaps(swaps),
            [("/dev/nvme0n1p3".to_string(), false), ("/mnt/my disk/swapfile".to_string(), true)]
        );
        assert!(proc_swaps("Filename Type Size Used Priority\n").is_empty());
        assert_eq!(unescape("a\\134b\\04"), "a\\b\\04");
    }
}
