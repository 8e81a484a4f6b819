//! The fuzz targets' input decoding, shared with `crashfuzz repro`: one
//! artifact file works with both.
//!
//! Every target reads its input as a [`Scenario`] (see
//! [`Scenario::from_bytes`]) and then narrows it to what the target covers.

use crate::runner::{run, Failure, Outcome, RunOptions};
use crate::scenario::Scenario;
use std::fmt;

/// A cargo-fuzz target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Flushes, crashes and recovery; no compaction.
    CrashOps,
    /// Flusher and compactor interleaved, crashes anywhere, PiTR on and off.
    Interleave,
    /// Long histories with PiTR compaction and snapshot checks.
    Pitr,
    /// A valid store image, then damaged; open and verify must not panic.
    RecoverCorrupt,
    /// EIO on writes and fsyncs.
    IoErrors,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] = [
        Target::CrashOps,
        Target::Interleave,
        Target::Pitr,
        Target::RecoverCorrupt,
        Target::IoErrors,
    ];

    /// The cargo-fuzz target name.
    pub fn name(self) -> &'static str {
        match self {
            Target::CrashOps => "crash_ops",
            Target::Interleave => "interleave",
            Target::Pitr => "pitr",
            Target::RecoverCorrupt => "recover_corrupt",
            Target::IoErrors => "io_errors",
        }
    }

    /// Parse a [`Target::name`].
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The scenario this target runs for `data`.
    pub fn scenario(self, data: &[u8]) -> Scenario {
        Scenario::from_bytes(data)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Run `data` as `target` would.
pub fn run_target(
    target: Target,
    data: &[u8],
    options: &RunOptions,
) -> Result<Outcome, Box<Failure>> {
    run(&target.scenario(data), options)
}

/// Write `count` seed-corpus inputs for `target` into `dir` (generated from
/// `seed`, never by hand). Returns how many files were written.
pub fn write_seed_corpus(
    target: Target,
    dir: &std::path::Path,
    seed: u64,
    count: u64,
) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let size = crate::generate::Size::Small;
    for i in 0..count {
        let bytes = crate::generate::scenario_bytes(seed ^ target as u64, i, size);
        std::fs::write(dir.join(format!("seed-{i:03}")), bytes)?;
    }
    Ok(count)
}
