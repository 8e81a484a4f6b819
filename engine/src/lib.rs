//! A couchstore-style append-only key-value store whose flusher keeps
//! committing while compaction copies the file in the background.
//!
//! The public API is what the crate root re-exports ([`Store`],
//! [`Compaction`], [`Background`], [`Snapshot`], their configuration,
//! reports and errors) plus a few public modules:
//!
//! - [`vfs`]: the one door to the disk ([`Vfs`], [`StdVfs`]).
//! - [`layout`]: the on-disk geometry and file names, for tools that read or
//!   damage files on purpose.
//! - [`inspect`]: every header block of a file, verified.
//! - [`failpoints`]: the catalog of crash points; [`mutants`]: seeded bugs.
//! - [`sync`]: the one source of locks and threads (shuttle's under the
//!   `shuttle` feature).
//!
//! Everything else (blocks and chunks, B+trees, recovery, the commit
//! protocol, compaction's and the background threads' internals) is private.
//! See `ARCHITECTURE.md` at the repository root for the code map.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod background;
mod btree;
mod commit;
mod compaction;
mod config;
mod control;
mod doc;
mod error;
pub mod failpoints;
mod files;
mod format;
pub mod inspect;
pub mod layout;
mod memo;
pub mod mutants;
mod recovery;
mod snapshot;
mod store;
pub mod sync;
mod types;
pub mod vfs;

pub use background::{Background, BackgroundConfig, StepHook};
pub use compaction::Compaction;
pub use config::{Clock, Config, ManualClock, PitrConfig, RecoveryPolicy, SystemClock};
pub use doc::{Counters, DocInfo, SeqEntry, COUNTERS_DOC};
pub use error::{Error, Result};
pub use format::Header;
pub use memo::ChunkMemo;
pub use snapshot::{Contents, Snapshot, VerifyReport};
pub use store::{
    Store, LOCAL_PREFIX, MAX_FANOUT, MAX_KEY_BYTES, MAX_LOCAL_NAME, MAX_LOCAL_VALUE,
    MAX_VALUE_BYTES,
};
pub use types::{
    BackgroundEvent, BackgroundObserver, BackgroundReport, CommitInfo, CompactionOptions,
    CompactionReport, FlushStart, HeaderInfo, LocalChange, ObserverHandle, OpenReport, Phase,
    Progress, Stats,
};
pub use vfs::{is_file_busy, FileVersion, OpenMode, StdVfs, Vfs, VfsFile};
