//! The cargo-fuzz targets by name: a leaf module, so that failures
//! ([`crate::failure`]) can name their target without depending on how a
//! target decodes and runs its input ([`crate::targets`]).

use std::fmt;

/// The first line of a thread-schedule artifact (`crate::threads`): such
/// an artifact is replayed by `crashfuzz repro` whatever the target.
pub const THREADS_MAGIC: &str = "crashfuzz-threads v1";

/// Whether `input` is a thread-schedule artifact.
pub fn is_threads_artifact(input: &[u8]) -> bool {
    input.starts_with(THREADS_MAGIC.as_bytes())
}

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

    /// What the target covers, one line (for the README and `--help`).
    pub fn about(self) -> &'static str {
        match self {
            Target::CrashOps => {
                "flushes, crashes (any mode, any flush or recovery failpoint, \
                                 any I/O call) and recovery; no compaction, no EIO"
            }
            Target::Interleave => {
                "the full scenario: flusher and compactor steps interleaved, \
                                   crashes anywhere, EIO, PiTR on and off"
            }
            Target::Pitr => {
                "PiTR always on: a tick before every flush, a compaction, \
                             a snapshot check after every finished compaction"
            }
            Target::RecoverCorrupt => {
                "a store image built by the scenario, then damaged \
                                       (bit flips, torn blocks, garbage tails, truncation, \
                                       swapped blocks); open, verify and read"
            }
            Target::IoErrors => {
                "the full scenario with at least one EIO (write or fsync) \
                                 armed before a flush"
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
