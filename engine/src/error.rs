//! The engine's typed errors. Bad bytes on disk are an error, never a panic.

use std::io;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file system refused an operation.
    #[error("I/O error during {op}: {source}")]
    Io {
        /// What the engine was doing.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A chunk's checksum does not match its bytes.
    #[error(
        "checksum mismatch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    ChecksumMismatch {
        /// File offset of the chunk.
        offset: u64,
        /// The checksum written on disk.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// Bytes on disk that cannot be what the format says.
    #[error("corrupted {what} at offset {offset}")]
    Corrupted {
        /// File offset of the bad bytes.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// No valid header anywhere in the file.
    #[error("no valid header in {file}")]
    NoValidHeader {
        /// The file that was scanned.
        file: String,
    },
    /// A previous write or fsync failed; the store must be reopened.
    #[error("store is poisoned by an earlier I/O error ({0}); reopen it")]
    Poisoned(String),
    /// The store lock is held by a compaction phase; try again later.
    #[error("the store lock is held by compaction")]
    Busy,
    /// A second compaction was requested while one runs.
    #[error("a compaction is already running")]
    CompactionRunning,
    /// The compaction was aborted on request.
    #[error("compaction aborted")]
    Aborted,
    /// `verify` found an inconsistency between trees, reduces or counters.
    #[error("verification failed: {0}")]
    Verify(String),
    /// The caller asked for something that does not exist or is not allowed.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl Error {
    /// Wrap an I/O error with what the engine was doing.
    pub fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { op, source }
    }

    /// Whether this error means the bytes on disk are bad (as opposed to I/O
    /// failing or a misuse of the API).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::ChecksumMismatch { .. } | Error::Corrupted { .. } | Error::NoValidHeader { .. }
        )
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
