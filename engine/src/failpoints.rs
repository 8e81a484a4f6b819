//! The catalog of every failpoint in the engine.
//!
//! Failpoints use the `fail` crate and are compiled in only with the
//! `failpoints` feature. Every `fail_point!` name in the engine's source must
//! appear in [`ALL`], and every name in [`ALL`] must appear in the source: the
//! `failpoints` crate has a test that scans the source and checks both ways.
//!
//! Names are `<phase>::<boundary>`. A crash injected at a failpoint freezes
//! the simulated disk at that instant, so each name is a crash point.

/// Flush (commit protocol) boundaries, in the order a flush hits them.
pub const FLUSH: &[&str] = &[
    "flush::before_bodies",
    "flush::after_bodies",
    "flush::before_data_sync",
    "flush::after_data_sync",
    "flush::before_header",
    "flush::after_header",
    "flush::before_header_sync",
    "flush::after_header_sync",
];

/// Open and recovery boundaries.
pub const RECOVERY: &[&str] = &[
    "recovery::before_cleanup",
    "recovery::after_cleanup",
    "recovery::before_truncate",
    "recovery::after_truncate",
];

/// Compaction boundaries, in the order a compaction hits them.
pub const COMPACTION: &[&str] = &[
    "compact::start",
    "compact::copy_step",
    "compact::before_commit",
    "compact::after_commit",
    "compact::catchup_unlocked",
    "compact::catchup_locked",
    "compact::replay_header",
    "compact::before_new_sync",
    "compact::after_new_sync",
    "compact::before_rename",
    "compact::after_rename",
    "compact::before_rename_dir_sync",
    "compact::after_rename_dir_sync",
    "compact::before_unlink",
    "compact::after_unlink",
    "compact::before_unlink_dir_sync",
    "compact::after_unlink_dir_sync",
    "compact::abort",
    // Last so that scenario encodings that index this catalog keep their
    // meaning; in order it comes right before `compact::catchup_locked`.
    "compact::before_store_lock",
];

/// Every failpoint name, flush first, then recovery, then compaction.
pub fn all() -> impl Iterator<Item = &'static str> {
    FLUSH
        .iter()
        .chain(RECOVERY.iter())
        .chain(COMPACTION.iter())
        .copied()
}

/// Hit a named failpoint. A no-op unless the `failpoints` feature is on.
/// Checked against the catalog in debug builds so a typo cannot hide a point.
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {{
        debug_assert!(
            $crate::failpoints::all().any(|n| n == $name),
            "failpoint {} is not in the catalog",
            $name
        );
        ::fail::fail_point!($name);
    }};
}
