//! A couchstore-style append-only key-value store whose flusher keeps
//! committing while compaction copies the file in the background.
//!
//! See `ARCHITECTURE.md` at the repository root for the code map.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod failpoints;
pub mod mutants;
pub mod vfs;

pub use error::{Error, Result};
pub use vfs::{OpenMode, StdVfs, Vfs, VfsFile};
