//! A couchstore-style append-only key-value store whose flusher keeps
//! committing while compaction copies the file in the background.
//!
//! - [`vfs`]: the one door to the disk ([`Vfs`], [`StdVfs`]).
//! - [`format`]: blocks, checksummed chunks, headers.
//! - [`btree`]: copy-on-write B+trees with reduces.
//! - [`store`]: open/recovery, the flusher's commit protocol, reads.
//! - [`compaction`]: copy without the lock, catch up, switch; PiTR.
//! - [`failpoints`]: the catalog of crash points; [`mutants`]: seeded bugs.
//! - [`background`]: flusher and compactor threads; [`sync`]: the one source
//!   of locks and threads (shuttle's under the `shuttle` feature).
//!
//! See `ARCHITECTURE.md` at the repository root for the code map.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod background;
pub mod btree;
mod commit;
pub mod compaction;
pub mod config;
pub mod doc;
pub mod error;
pub mod failpoints;
pub mod format;
pub mod inspect;
pub mod mutants;
pub mod recovery;
pub mod snapshot;
pub mod store;
pub mod sync;
pub mod vfs;

pub use background::{
    Background, BackgroundConfig, BackgroundEvent, BackgroundObserver, BackgroundReport,
    FlushStart, ObserverHandle, StepHook,
};
pub use compaction::{Compaction, CompactionOptions, CompactionReport, Phase, Progress};
pub use config::{Clock, Config, ManualClock, PitrConfig, RecoveryPolicy, SystemClock};
pub use doc::{Counters, DocInfo, SeqEntry};
pub use error::{Error, Result};
pub use format::Header;
pub use snapshot::{Contents, Snapshot, VerifyReport};
pub use store::{CommitInfo, HeaderInfo, OpenReport, Stats, Store};
pub use vfs::{is_file_busy, OpenMode, StdVfs, Vfs, VfsFile};
