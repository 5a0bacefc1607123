//! What the busy-device checks cost on this machine, read-only:
//! - the /proc scan for VFIO holders (`sysfs::holders::scan`), run before
//!   every unbind, remove or reset of a device on a VFIO driver;
//! - a bounded write (`Sysfs::write_bounded`: a forked writer) against a
//!   plain write, both to a file in a temporary directory (never /sys).
//!
//!   cargo run --release --example holders_scan [ROUNDS]
//!
//! Prints medians; BENCHMARKS.md quotes them.

use nodedev::sysfs::host::HostSysfs;
use nodedev::sysfs::{holders, Sysfs, VfioDevice};
use std::path::Path;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(rounds: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm the caches once
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    // A device nobody holds: the whole table is read, as in the common case.
    let dev = VfioDevice { address: "0000:ff:1f.7", group: Some(99999), cdev: Some("vfio99999") };
    let procs = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .count();
    let fds: usize = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path().join("fd")).ok())
        .map(|d| d.count())
        .sum();
    let mut uninspected = 0;
    let scan = time(rounds, || uninspected = holders::scan(Path::new("/proc"), &dev).unwrap().uninspected);
    println!("holder scan: {procs} processes, {fds} fds, {uninspected} not inspectable: median {:.2} ms over {rounds} rounds", scan.as_secs_f64() * 1e3);

    let dir = std::env::temp_dir().join(format!("nodedev-bench-bounded-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sys")).unwrap();
    std::fs::write(dir.join("sys/attr"), "").unwrap();
    let fs = HostSysfs::new(&dir);
    let plain = time(rounds, || fs.write("attr", "0000:03:00.0").unwrap());
    let bounded = time(rounds, || fs.write_bounded("attr", "0000:03:00.0", Duration::from_secs(10)).unwrap());
    println!(
        "write to a file: plain median {:.3} ms, bounded (forked writer) median {:.3} ms over {rounds} rounds",
        plain.as_secs_f64() * 1e3,
        bounded.as_secs_f64() * 1e3
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
