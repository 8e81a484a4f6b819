//! What a reader that walks many headers of one file keeps between walks:
//! each verified chunk, and each subtree walked without error, so a walk of
//! a new header decodes only what it does not share with the headers before
//! it (see [`ChunkMemo`]).

use crate::btree::Subtrees;
use crate::error::Result;
use crate::format::{read_chunk_with_end, ChunkSource, PositionHasher};
use crate::vfs::VfsFile;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

/// Chunks of one file already read and verified, by position, with the raw
/// offset each ends at: a reader that walks many headers of one file (they
/// share most nodes and every unchanged body) reads and checksums each
/// chunk once. The owner keeps it exact: it knows how far the file's bytes
/// are unchanged since the chunks were read, and calls
/// [`ChunkMemo::forget_from`] with that offset (or [`ChunkMemo::clear`] for
/// another file) before the memo is used again. A chunk wholly below the
/// unchanged offset would read back the same bytes and pass the same
/// checksum, so serving it from memory changes no result; what it skips is
/// the read itself (an injected read fault on it is not drawn).
#[derive(Debug, Default)]
pub struct ChunkMemo {
    chunks: Chunks,
    /// Subtrees walked without error.
    subtrees: Subtrees,
}

/// Verified chunks by position, with the raw offset each ends at.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    map: HashMap<u64, (u64, Arc<[u8]>), BuildHasherDefault<PositionHasher>>,
    hits: u64,
    misses: u64,
}

impl ChunkMemo {
    /// Forget every chunk that reaches `offset` or past it.
    pub fn forget_from(&mut self, offset: u64) {
        self.chunks.map.retain(|_, (end, _)| *end <= offset);
        self.subtrees.forget_from(offset);
    }

    /// Forget every chunk.
    pub fn clear(&mut self) {
        self.chunks.map.clear();
        self.subtrees.clear();
    }

    /// Chunks served from memory, chunks read from the file, and subtrees
    /// whose walk was served from memory.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.chunks.hits, self.chunks.misses, self.subtrees.hits)
    }
}

/// A file read through a [`ChunkMemo`]'s chunks; its subtrees go to
/// [`crate::btree::Tree::verify_memo`] beside it.
pub(crate) struct MemoizedFile<'a> {
    file: &'a dyn VfsFile,
    chunks: RefCell<&'a mut Chunks>,
}

/// Split `memo` into the file's chunk source and its subtrees.
pub(crate) fn split<'a>(
    file: &'a dyn VfsFile,
    memo: &'a mut ChunkMemo,
) -> (MemoizedFile<'a>, RefCell<&'a mut Subtrees>) {
    (
        MemoizedFile {
            file,
            chunks: RefCell::new(&mut memo.chunks),
        },
        RefCell::new(&mut memo.subtrees),
    )
}

impl ChunkSource for MemoizedFile<'_> {
    fn chunk(&self, pos: u64) -> Result<Vec<u8>> {
        let mut chunks = self.chunks.borrow_mut();
        if let Some((_, bytes)) = chunks.map.get(&pos) {
            let bytes = bytes.to_vec();
            chunks.hits += 1;
            return Ok(bytes);
        }
        let (payload, end) = read_chunk_with_end(self.file, pos)?;
        chunks.misses += 1;
        chunks.map.insert(pos, (end, Arc::from(payload.as_slice())));
        Ok(payload)
    }
}
