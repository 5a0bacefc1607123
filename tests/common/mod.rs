//! What the integration tests share.

/// Whether a tool or file that `.ci/run` installs is here. Missing: a note
/// and a skip on a developer's machine, a failure under NODEDEV_CI=1 (CI),
/// where a skipped check would pass without having run.
pub fn ci_installs(what: &str, present: bool) -> bool {
    if !present {
        assert!(std::env::var_os("NODEDEV_CI").is_none(), "{what} is missing: .ci/run installs it");
        eprintln!("note: {what} is not installed; this check is skipped");
    }
    present
}
