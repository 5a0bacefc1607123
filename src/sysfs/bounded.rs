//! A write to a real sysfs file that the caller stops waiting for after a
//! time bound.
//!
//! The kernel may keep a writer of `unbind`, `remove` or `reset` waiting
//! until a process holding the device through VFIO lets go, after a first
//! signal uninterruptibly. A thread doing the write would pin its process:
//! a process cannot finish exiting while one of its threads waits in the
//! kernel, so a CLI that got its timeout would still not return to its
//! shell. The write therefore runs in a grandchild process (fork, fork):
//! it keeps only the sysfs file and a pipe for its result (every other fd,
//! the state lock's included, is closed first), the middle process exits at
//! once, and the orphan finishes the write whenever the kernel lets it,
//! reparented to init, or to the caller itself when the caller is a child
//! subreaper or PID 1 of a container. So the grandchild sends its pid first:
//! when it turns out to be the caller's child, the caller reaps it (at once
//! when its result came, or at a later bounded write when it timed out), so
//! that no write leaves a zombie. The caller waits on the pipe with a
//! timeout and, on timeout, closes it and goes on.
//!
//! Between fork and _exit the children call only async-signal-safe
//! functions (dup2, close_range, fork, getpid, write, _exit), as POSIX requires in a
//! multi-threaded process.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Writers that are this process's children (it is a subreaper) and had not
/// exited when last looked at: reaped at a later write.
static UNREAPED: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());

/// Whether `pid` is a child of ours that is still running: false once it is
/// reaped now, or when it is not our child (reparented to init: not ours to reap).
fn still_ours(pid: libc::pid_t) -> bool {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on one pid; WNOHANG never blocks.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 => return true,
            n if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            _ => return false,
        }
    }
}

/// Reap the writers left running by earlier writes that have finished since.
fn reap_earlier() {
    let mut left = UNREAPED.lock().unwrap_or_else(|p| p.into_inner());
    left.retain(|pid| still_ours(*pid));
}

/// Reap the writer `pid` if it is our child; it has sent its result and is
/// exiting, so a short wait suffices; else it is left for a later write.
fn reap(pid: libc::pid_t, finished: bool) {
    if finished {
        for _ in 0..100 {
            if !still_ours(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if still_ours(pid) {
        UNREAPED.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
    }
}

/// Write `value` to the open `file` in one write(2), waiting at most `limit`.
pub fn write(file: &File, value: &[u8], limit: Duration) -> io::Result<()> {
    reap_earlier();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fds from pipe2, owned here only.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let (target, result) = (file.as_raw_fd(), wr.as_raw_fd());
    // SAFETY: see the module comment: the child runs async-signal-safe calls only.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child, on our own copies of the fds.
        unsafe { child(target, result, value) }
    }
    drop(wr);
    // The middle process exits right after its fork: reap it now.
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
    wait_result(&rd, limit)
}

/// The children's side: never returns.
unsafe fn child(target: i32, result: i32, value: &[u8]) -> ! {
    // Keep the file as fd 0 and the pipe as fd 1, close everything else
    // (above 10 first, so that neither dup2 overwrites the other's source).
    let t = libc::fcntl(target, libc::F_DUPFD, 10);
    let r = libc::fcntl(result, libc::F_DUPFD, 10);
    if t < 0 || r < 0 || libc::dup2(t, 0) < 0 || libc::dup2(r, 1) < 0 {
        libc::_exit(1);
    }
    if libc::syscall(libc::SYS_close_range, 2u32, u32::MAX, 0u32) != 0 {
        for fd in 2..4096 {
            libc::close(fd);
        }
    }
    if libc::fork() != 0 {
        libc::_exit(0); // the middle process (or a failed fork: the parent sees EOF)
    }
    let me: libc::pid_t = libc::getpid();
    libc::write(1, (&me as *const libc::pid_t).cast(), std::mem::size_of::<libc::pid_t>());
    let n = libc::write(0, value.as_ptr().cast(), value.len());
    let errno: i32 = if n == value.len() as isize {
        0
    } else if n < 0 {
        *libc::__errno_location()
    } else {
        libc::EIO
    };
    libc::write(1, (&errno as *const i32).cast(), std::mem::size_of::<i32>());
    libc::_exit(0)
}

/// The grandchild's errno from the pipe (after its pid), or TimedOut.
fn wait_result(rd: &OwnedFd, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    // pid (4 bytes), then errno (4 bytes).
    let mut buf = [0u8; 8];
    let mut have = 0;
    let writer = |buf: &[u8; 8]| libc::pid_t::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd { fd: rd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one pollfd we own.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            if have >= 4 {
                reap(writer(&buf), false);
            }
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("the kernel did not return within {limit:?}")));
        }
        // SAFETY: reading into the rest of a local buffer from our fd.
        let got = unsafe { libc::read(rd.as_raw_fd(), buf[have..].as_mut_ptr().cast(), 8 - have) };
        if got < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if got <= 0 {
            if have >= 4 {
                reap(writer(&buf), true);
            }
            return Err(io::Error::other("the process doing the write could not start"));
        }
        have += got as usize;
        if have < 8 {
            continue;
        }
        reap(writer(&buf), true);
        return match i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]) {
            0 => Ok(()),
            errno => Err(io::Error::from_raw_os_error(errno)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_lands_and_errors_come_back() {
        let path = std::env::temp_dir().join(format!("nodedev-bounded-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        write(&f, b"0000:03:00.0", Duration::from_secs(5)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0000:03:00.0");
        // A read-only fd: the child's write fails with EBADF, reported as such.
        let ro = File::open(&path).unwrap();
        let e = write(&ro, b"x", Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_write_that_blocks_gives_control_back_in_time() {
        // A FIFO nobody reads from: opening it for writing non-blocking fails,
        // so open it read-write (never blocks) and fill it; then a write blocks.
        let path = std::env::temp_dir().join(format!("nodedev-bounded-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a path of our own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let big = vec![b'x'; 1 << 20]; // more than a pipe buffer
        let start = Instant::now();
        let e = write(&f, &big, Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        // Drain the FIFO so that the orphaned writer finishes too.
        let mut f = f;
        let mut left = big.len();
        let mut buf = vec![0u8; 65536];
        while left > 0 {
            left -= std::io::Read::read(&mut f, &mut buf).unwrap();
        }
        std::fs::remove_file(&path).unwrap();
    }
}
