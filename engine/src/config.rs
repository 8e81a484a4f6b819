//! Store configuration and the clock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where commit timestamps come from. Tests and the simulator inject a
/// [`ManualClock`] so that PiTR windows are deterministic.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Seconds since some epoch; must never go backwards.
    fn now_secs(&self) -> u64;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_secs(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    secs: AtomicU64,
}

impl ManualClock {
    /// A clock reading `secs`.
    pub fn new(secs: u64) -> ManualClock {
        ManualClock {
            secs: AtomicU64::new(secs),
        }
    }

    /// Move forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.secs.fetch_add(secs, Ordering::SeqCst);
    }

    /// Set the reading; ignored if it would go backwards.
    pub fn set(&self, secs: u64) {
        self.secs.fetch_max(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_secs(&self) -> u64 {
        self.secs.load(Ordering::SeqCst)
    }
}

/// What recovery does with a damaged tail after the newest valid header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecoveryPolicy {
    /// Fall back to the newest valid header and truncate everything after it,
    /// durably. A crash mid-commit always leaves such a tail.
    #[default]
    TolerateCorruptTail,
    /// Refuse to open if a damaged header (a header block whose checksum or
    /// contents are bad) follows the newest valid header. A tail of plain
    /// data (an interrupted commit, even the very first one, which leaves a
    /// file with data but no header) is still truncated.
    Strict,
}

/// Point-in-time recovery: compaction keeps one header per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PitrConfig {
    /// Window width in seconds (at least 1).
    pub granularity_secs: u64,
    /// History older than this (relative to compaction start) is dropped.
    pub max_history_age_secs: u64,
}

/// Store configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Maximum entries per tree node (at least 2). Small values make deep
    /// trees with few keys.
    pub fanout: usize,
    /// See [`RecoveryPolicy`].
    pub recovery: RecoveryPolicy,
    /// Source of commit timestamps.
    pub clock: Arc<dyn Clock>,
    /// PiTR settings; `None` turns PiTR off.
    pub pitr: Option<PitrConfig>,
    /// Documents copied per compaction step.
    pub copy_batch_docs: usize,
    /// Catch-up rounds without the lock before the final locked round.
    pub max_unlocked_catchup_rounds: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            fanout: 32,
            recovery: RecoveryPolicy::default(),
            clock: Arc::new(SystemClock),
            pitr: None,
            copy_batch_docs: 256,
            max_unlocked_catchup_rounds: 3,
        }
    }
}
