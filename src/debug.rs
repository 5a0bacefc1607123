//! NODEDEV_DEBUG: the one switch for diagnostics on stderr. When it is set
//! (NODEDEV_DEBUG=1), the default error handler prints every error
//! (`capi/error.rs`) and every connection traces its sysfs accesses
//! (`sysfs/trace.rs`). Unset, the library never writes to a daemon's stderr.

use std::fmt;
use std::io::Write;

pub fn enabled() -> bool {
    // Any value, as the header has always said of the error handler.
    std::env::var_os("NODEDEV_DEBUG").is_some()
}

/// One line `nodedev: ...` on stderr, written whole so that lines of
/// several threads never interleave.
pub fn log(line: fmt::Arguments) {
    let _ = writeln!(std::io::stderr().lock(), "nodedev: {line}");
}
