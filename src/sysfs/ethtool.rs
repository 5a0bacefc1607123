//! An interface's offload features, asked the way libvirt asks them: the
//! legacy ethtool "get" requests, which the kernel answers for any user.

use std::io;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GFLAGS: u32 = 0x25;

/// (request, libvirt's name), in libvirt's order; then the flags of GFLAGS.
const SIMPLE: [(u32, &str); 6] =
    [(0x14, "rx"), (0x16, "tx"), (0x18, "sg"), (0x1e, "tso"), (0x23, "gso"), (0x2b, "gro")];
const FLAGS: [(u32, &str); 5] =
    [(1 << 15, "lro"), (1 << 8, "rxvlan"), (1 << 7, "txvlan"), (1 << 27, "ntuple"), (1 << 28, "rxhash")];

/// `struct ethtool_value`.
#[repr(C)]
struct Value {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with its `ifr_data` member (40 bytes on LP64).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

struct Socket(libc::c_int);

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// One GET request: Ok(data), or the errno.
fn get(sock: &Socket, iface: &str, cmd: u32) -> Result<u32, i32> {
    let mut value = Value { cmd, data: 0 };
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], data: (&mut value as *mut Value).cast(), _pad: [0; 16] };
    req.name[..iface.len()].copy_from_slice(iface.as_bytes());
    // SAFETY: req is a valid ifreq whose data points at a live ethtool_value.
    let r = unsafe { libc::ioctl(sock.0, SIOCETHTOOL as _, &mut req as *mut IfReq) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    } else {
        Ok(value.data)
    }
}

pub(crate) fn features(iface: &str) -> io::Result<Vec<String>> {
    if iface.is_empty() || iface.len() >= libc::IFNAMSIZ || iface.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let sock = Socket(fd);
    let mut out = Vec::new();
    for (cmd, name) in SIMPLE {
        match get(&sock, iface, cmd) {
            Ok(v) if v != 0 => out.push(name.to_string()),
            Err(libc::ENODEV) => return Err(io::Error::from_raw_os_error(libc::ENODEV)),
            // A driver without the request: the feature is not there.
            _ => {}
        }
    }
    if let Ok(flags) = get(&sock, iface, ETHTOOL_GFLAGS) {
        out.extend(FLAGS.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| n.to_string()));
    }
    Ok(out)
}
