//! The on-disk layout, for tools that read or damage store files on purpose
//! (the harness's corruption runs, the engine's own byte-level tests): block
//! and chunk geometry, the block markers, the chunk checksum, header reads,
//! and the names of a store's files. Everything else about the format is
//! the engine's own.

pub use crate::files::{classify, compact_file_name, file_name, FileKind};
pub use crate::format::{
    checksum_at, read_header, BLOCK_BYTES, CHUNK_PREFIX_BYTES, MARKER_DATA, MARKER_HEADER,
    MAX_CHUNK_BYTES,
};
