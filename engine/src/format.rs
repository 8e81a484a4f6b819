//! The on-disk format: blocks, chunks and headers.
//!
//! A file is cut into [`BLOCK_BYTES`]-byte blocks. The first byte of every
//! block is a marker: [`MARKER_DATA`] or [`MARKER_HEADER`]. Data that crosses a
//! block boundary gets a data marker inserted there, so a header can be found
//! by looking only at block starts, and data never looks like a header.
//!
//! Every record is a chunk: `len: u32 BE | crc32c(pos, payload): u32 BE |
//! payload`, the checksum binding the chunk's file offset too
//! ([`checksum_at`]). Positions are raw file offsets of the chunk's first
//! byte.
//!
//! A header is a chunk that starts right after a header marker at a block
//! start. It holds the format version, update_seq, purge_seq, timestamp, the
//! offset of the previous header and the three tree roots.

use crate::error::{Error, Result};
use crate::vfs::VfsFile;
use std::sync::Arc;

/// Bytes per block.
pub const BLOCK_BYTES: u64 = 4096;
/// Marker byte of a block that holds data.
pub const MARKER_DATA: u8 = 0x00;
/// Marker byte of a block that starts with a header.
pub const MARKER_HEADER: u8 = 0x01;
/// Bytes of a chunk's prefix (length and checksum).
pub const CHUNK_PREFIX_BYTES: usize = 8;
/// The format version written in every header.
pub const FORMAT_VERSION: u8 = 1;
/// Chunks larger than this are taken as corruption rather than allocated.
pub const MAX_CHUNK_BYTES: u32 = 64 << 20;

/// Sum of a subtree, kept in interior nodes and in headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Reduce {
    /// Entries that are not deleted.
    pub live: u64,
    /// Entries that are tombstones.
    pub deleted: u64,
    /// Total body bytes of the entries.
    pub bytes: u64,
}

impl std::ops::Add for Reduce {
    type Output = Reduce;

    /// The sum of two reduces. Saturating: reduces read from a damaged file
    /// can be anything, and summing them must give a wrong reduce (which
    /// `verify` reports) rather than an overflow panic.
    fn add(self, other: Reduce) -> Reduce {
        Reduce {
            live: self.live.saturating_add(other.live),
            deleted: self.deleted.saturating_add(other.deleted),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// A pointer to a tree node with the reduce of its subtree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodePtr {
    /// File offset of the node's chunk.
    pub pos: u64,
    /// Reduce of the whole subtree.
    pub reduce: Reduce,
}

/// A commit header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Highest seqno in this commit.
    pub update_seq: u64,
    /// Highest seqno of a tombstone purged by compaction.
    pub purge_seq: u64,
    /// Commit time (seconds, from the store's clock).
    pub timestamp: u64,
    /// Offset of the previous header in this file, if any.
    pub prev_header: Option<u64>,
    /// Root of the by-id tree.
    pub by_id: Option<NodePtr>,
    /// Root of the by-seq tree.
    pub by_seq: Option<NodePtr>,
    /// Root of the local-docs tree.
    pub local: Option<NodePtr>,
}

impl Header {
    /// The header of a store that has never committed.
    pub fn empty() -> Header {
        Header {
            update_seq: 0,
            purge_seq: 0,
            timestamp: 0,
            prev_header: None,
            by_id: None,
            by_seq: None,
            local: None,
        }
    }

    /// Encode the header payload (without chunk prefix).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.push(FORMAT_VERSION);
        put_u64(&mut out, self.update_seq);
        put_u64(&mut out, self.purge_seq);
        put_u64(&mut out, self.timestamp);
        put_opt_u64(&mut out, self.prev_header);
        for root in [self.by_id, self.by_seq, self.local] {
            put_opt_ptr(&mut out, root);
        }
        out
    }

    /// Decode a header payload read at `offset`.
    pub fn decode(bytes: &[u8], offset: u64) -> Result<Header> {
        let mut r = Reader::new(bytes, offset, "header");
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(r.corrupt(format!("header version {version}")));
        }
        let header = Header {
            update_seq: r.u64()?,
            purge_seq: r.u64()?,
            timestamp: r.u64()?,
            prev_header: r.opt_u64()?,
            by_id: r.opt_ptr()?,
            by_seq: r.opt_ptr()?,
            local: r.opt_ptr()?,
        };
        r.finish()?;
        if header.purge_seq > header.update_seq {
            return Err(r.corrupt("header purge_seq above update_seq".into()));
        }
        // The next mutation gets update_seq + 1; a header that leaves no
        // seqno after it cannot be real (and would overflow on open).
        if header.update_seq == u64::MAX {
            return Err(r.corrupt("header update_seq leaves no next seqno".into()));
        }
        if header.prev_header.is_some_and(|p| p >= offset) {
            return Err(r.corrupt("header points forward to its previous header".into()));
        }
        if header
            .prev_header
            .is_some_and(|p| !p.is_multiple_of(BLOCK_BYTES))
        {
            return Err(r.corrupt("previous header not at a block start".into()));
        }
        Ok(header)
    }
}

/// The checksum of a chunk written at `pos`: CRC32C over the position and the
/// payload, so an intact chunk read from anywhere but where it was written
/// (a misdirected write, swapped blocks) fails its check.
pub fn checksum_at(pos: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&pos.to_be_bytes()), payload)
}

/// Bytes a chunk of `payload_bytes` takes on disk starting at `pos`,
/// markers included; `Corrupted` if it would end past `u64::MAX` (a
/// position read from a damaged file can be anything).
fn raw_span(pos: u64, logical: u64) -> Result<u64> {
    let past_any_file = || Error::Corrupted {
        offset: pos,
        what: format!("chunk of {logical} bytes at {pos} ends past any file"),
    };
    // Walk block by block: each block start inside the span costs one byte.
    let start = pos;
    let mut pos = pos;
    let mut left = logical;
    while left > 0 {
        if pos.is_multiple_of(BLOCK_BYTES) {
            pos = pos.checked_add(1).ok_or_else(past_any_file)?;
            continue;
        }
        let room = BLOCK_BYTES - pos % BLOCK_BYTES;
        let take = room.min(left);
        pos = pos.checked_add(take).ok_or_else(past_any_file)?;
        left -= take;
        if crate::mutants::active(crate::mutants::Mutant::MarkerCountedAtChunkEnd)
            && pos.is_multiple_of(BLOCK_BYTES)
        {
            // Landed on a block start: step over its marker.
            pos = pos.checked_add(1).ok_or_else(past_any_file)?;
        }
    }
    Ok(pos - start)
}

/// The raw offset just past a chunk of `payload_bytes` starting at `pos`
/// (prefix, payload and the block markers inside): every byte
/// [`read_chunk`] reads for it lies below.
pub(crate) fn chunk_end(pos: u64, payload_bytes: u64) -> Result<u64> {
    let span = raw_span(pos, CHUNK_PREFIX_BYTES as u64 + payload_bytes)?;
    Ok(pos.saturating_add(span))
}

/// Read `len` logical bytes starting at raw offset `pos`, skipping the marker
/// byte at each block start. Returns the bytes and the raw end offset.
pub fn read_logical(file: &dyn VfsFile, pos: u64, len: u64) -> Result<(Vec<u8>, u64)> {
    let span = raw_span(pos, len)?;
    let read_error = |e: std::io::Error| logical_read_error(e, pos, len);
    if span == len {
        // No block start inside: read straight into the result.
        let mut out = vec![0u8; span as usize];
        file.read_exact_at(&mut out, pos).map_err(read_error)?;
        return Ok((out, pos + span));
    }
    let mut raw = vec![0u8; span as usize];
    file.read_exact_at(&mut raw, pos).map_err(read_error)?;
    let mut out = Vec::with_capacity(len as usize);
    let mut i = 0usize;
    while i < raw.len() {
        let at = pos + i as u64;
        if at.is_multiple_of(BLOCK_BYTES) {
            let byte = raw[i];
            if byte != MARKER_DATA {
                return Err(Error::Corrupted {
                    offset: at,
                    what: format!("block marker {byte:#04x} inside a data chunk"),
                });
            }
            i += 1;
            continue;
        }
        // Copy up to the next block start in one go.
        let end = (i + (BLOCK_BYTES - at % BLOCK_BYTES) as usize).min(raw.len());
        out.extend_from_slice(&raw[i..end]);
        i = end;
    }
    Ok((out, pos + span))
}

/// The error of a failed read of `len` logical bytes at `pos`.
fn logical_read_error(e: std::io::Error, pos: u64, len: u64) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Corrupted {
            offset: pos,
            what: format!("chunk of {len} bytes runs past the end of the file"),
        },
        _ => Error::Io {
            op: "read",
            source: e,
        },
    }
}

/// Read and verify the chunk at `pos`.
pub fn read_chunk(file: &dyn VfsFile, pos: u64) -> Result<Vec<u8>> {
    read_chunk_with_end(file, pos).map(|(payload, _)| payload)
}

/// [`read_chunk`], with the raw offset just past the chunk.
pub(crate) fn read_chunk_with_end(file: &dyn VfsFile, pos: u64) -> Result<(Vec<u8>, u64)> {
    let prefix_bytes = CHUNK_PREFIX_BYTES as u64;
    let mut on_stack = [0u8; CHUNK_PREFIX_BYTES];
    let (len, stored, after) = if raw_span(pos, prefix_bytes)? == prefix_bytes {
        // No block start inside the prefix (nearly always): the same one
        // read as read_logical's, into the stack instead of a Vec.
        file.read_exact_at(&mut on_stack, pos)
            .map_err(|e| logical_read_error(e, pos, prefix_bytes))?;
        let (len, stored) = split_prefix(&on_stack);
        (len, stored, pos + prefix_bytes)
    } else {
        let (prefix, after) = read_logical(file, pos, prefix_bytes)?;
        let (len, stored) = split_prefix(&prefix);
        (len, stored, after)
    };
    if len > MAX_CHUNK_BYTES {
        return Err(Error::Corrupted {
            offset: pos,
            what: format!("chunk length {len}"),
        });
    }
    let (payload, end) = read_logical(file, after, u64::from(len))?;
    verify_checksum(pos, &payload, stored)?;
    Ok((payload, end))
}

fn split_prefix(prefix: &[u8]) -> (u32, u32) {
    let mut len = [0u8; 4];
    let mut crc = [0u8; 4];
    len.copy_from_slice(&prefix[..4]);
    crc.copy_from_slice(&prefix[4..8]);
    (u32::from_be_bytes(len), u32::from_be_bytes(crc))
}

fn verify_checksum(offset: u64, payload: &[u8], stored: u32) -> Result<()> {
    let computed = checksum_at(offset, payload);
    if computed != stored {
        return Err(Error::ChecksumMismatch {
            offset,
            stored,
            computed,
        });
    }
    Ok(())
}

/// Read the header whose block starts at `block_pos`.
/// `check_crc` is false only for the seeded bug that accepts torn headers.
pub fn read_header(file: &dyn VfsFile, block_pos: u64, check_crc: bool) -> Result<Header> {
    // An error, not an assert: the position may come from a caller of
    // `Store::snapshot_at_header`. Positions read from disk are checked in
    // `Header::decode`.
    if !block_pos.is_multiple_of(BLOCK_BYTES) {
        return Err(Error::Invalid(format!(
            "header position {block_pos} is not at a block start"
        )));
    }
    let mut marker = [0u8; 1];
    file.read_exact_at(&mut marker, block_pos)
        .map_err(Error::io("read header marker"))?;
    if marker[0] != MARKER_HEADER {
        return Err(Error::Corrupted {
            offset: block_pos,
            what: format!(
                "block marker {:#04x} where a header was expected",
                marker[0]
            ),
        });
    }
    let pos = block_pos + 1;
    let (prefix, after) = read_logical(file, pos, CHUNK_PREFIX_BYTES as u64)?;
    let (len, stored) = split_prefix(&prefix);
    if len as u64 > BLOCK_BYTES - 1 - CHUNK_PREFIX_BYTES as u64 {
        return Err(Error::Corrupted {
            offset: block_pos,
            what: format!("header length {len}"),
        });
    }
    let (payload, _) = read_logical(file, after, u64::from(len))?;
    if check_crc {
        verify_checksum(block_pos, &payload, stored)?;
    }
    Header::decode(&payload, block_pos)
}

/// An append-only writer with a write-behind buffer: chunks are laid out in
/// memory (markers included) and reach the file in one write per
/// [`AppendFile::write_out`]. Reads of buffered positions are served from
/// memory, so a commit can read nodes it has just laid out.
///
/// # A header's block is the header's alone
/// After a header, the next append starts at the next block boundary: the
/// rest of the header's block is never written (it reads as zeroes). A
/// device without power-safe overwrite can lose a whole 512-byte sector (or
/// 4 KiB page) that a torn write touched, bytes synced long before
/// included; if the next commit's first write shared the header's sector, a
/// crash before that commit's fsync could destroy the header of an
/// acknowledged commit. With the block padded, a torn append only ever
/// damages blocks no acknowledged header lives in. The cost is at most one
/// block per commit.
#[derive(Debug)]
pub struct AppendFile {
    file: Arc<dyn VfsFile>,
    buf_start: u64,
    buf: Vec<u8>,
    /// The buffer ends with a header: after writing it out, skip to the
    /// next block.
    header_in_buf: bool,
}

/// Where appends go after a header ending at `end`: the next block boundary
/// (see [`AppendFile`]), unless the commit-shares-header-sector seeded bug
/// is on.
fn after_header(end: u64) -> u64 {
    if crate::mutants::active(crate::mutants::Mutant::CommitSharesHeaderSector) {
        end
    } else {
        end.div_ceil(BLOCK_BYTES) * BLOCK_BYTES
    }
}

impl AppendFile {
    /// Append to `file`, whose last record (normally a header) ends at
    /// `end`: the first append goes to the next block boundary at or after
    /// `end`, so it never shares a block with what is before it.
    pub fn new(file: Arc<dyn VfsFile>, end: u64) -> AppendFile {
        AppendFile {
            file,
            buf_start: after_header(end),
            buf: Vec::new(),
            header_in_buf: false,
        }
    }

    /// The underlying file.
    pub fn file(&self) -> &Arc<dyn VfsFile> {
        &self.file
    }

    /// The raw offset the next byte will be written at.
    pub fn end(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    fn push_logical(&mut self, mut bytes: &[u8]) {
        // A block's worth at a time: a data marker at each boundary.
        while !bytes.is_empty() {
            if self.end().is_multiple_of(BLOCK_BYTES) {
                self.buf.push(MARKER_DATA);
            }
            let room = (BLOCK_BYTES - self.end() % BLOCK_BYTES) as usize;
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.buf.extend_from_slice(now);
            bytes = rest;
        }
    }

    /// Lay out a chunk; returns its position.
    pub fn append_chunk(&mut self, payload: &[u8]) -> u64 {
        let pos = self.end();
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        debug_assert!(len <= MAX_CHUNK_BYTES, "chunk too large");
        let mut prefix = [0u8; CHUNK_PREFIX_BYTES];
        prefix[..4].copy_from_slice(&len.to_be_bytes());
        prefix[4..].copy_from_slice(&checksum_at(pos, payload).to_be_bytes());
        self.push_logical(&prefix);
        self.push_logical(payload);
        pos
    }

    /// Lay out a header at the next block boundary; returns the block's
    /// position. The gap before it is never written (it reads as zeroes).
    pub fn append_header(&mut self, header: &Header) -> Result<u64> {
        self.write_out()?;
        let pos = self.end().div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        let payload = header.encode();
        assert!(
            payload.len() + CHUNK_PREFIX_BYTES < BLOCK_BYTES as usize,
            "a header must fit in one block"
        );
        self.buf_start = pos;
        self.buf.push(MARKER_HEADER);
        self.buf
            .extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.buf
            .extend_from_slice(&checksum_at(pos, &payload).to_be_bytes());
        self.buf.extend_from_slice(&payload);
        self.header_in_buf = true;
        Ok(pos)
    }

    /// Write the buffer to the file in one call.
    pub fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        match self.file.write_all_at(&self.buf, self.buf_start) {
            Ok(()) => {}
            // "failed to write whole buffer": the kernel took a zero-length
            // write, nothing left to report.
            Err(e)
                if e.kind() == std::io::ErrorKind::WriteZero
                    && crate::mutants::active(crate::mutants::Mutant::ShortWriteTakenComplete) => {}
            Err(e) => return Err(Error::io("write")(e)),
        }
        self.buf_start += self.buf.len() as u64;
        self.buf.clear();
        if std::mem::take(&mut self.header_in_buf) {
            self.buf_start = after_header(self.buf_start);
        }
        Ok(())
    }

    /// Read a chunk that was written out. Every reader of an `AppendFile`
    /// reads only chunks of earlier write-outs (the trees it modifies belong
    /// to a committed or spilled header: `commit::apply` lays out on top of
    /// one, compaction spills after every batch), so there is no in-buffer
    /// path: a chunk still in the buffer would read as zeroes or past the
    /// end of the file, a checksum or I/O error, never wrong data.
    pub fn read_chunk(&self, pos: u64) -> Result<Vec<u8>> {
        read_chunk(self.file.as_ref(), pos)
    }
}

/// Where chunks can be read from: a file, or an [`AppendFile`]'s file.
pub trait ChunkSource {
    /// Read and verify the chunk at `pos`.
    fn chunk(&self, pos: u64) -> Result<Vec<u8>>;
}

impl ChunkSource for AppendFile {
    fn chunk(&self, pos: u64) -> Result<Vec<u8>> {
        self.read_chunk(pos)
    }
}

impl ChunkSource for Arc<dyn VfsFile> {
    fn chunk(&self, pos: u64) -> Result<Vec<u8>> {
        read_chunk(self.as_ref(), pos)
    }
}

// ---- little encoding helpers -------------------------------------------------

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            out.push(1);
            put_u64(out, v);
        }
        None => out.push(0),
    }
}

pub(crate) fn put_reduce(out: &mut Vec<u8>, r: Reduce) {
    put_u64(out, r.live);
    put_u64(out, r.deleted);
    put_u64(out, r.bytes);
}

fn put_opt_ptr(out: &mut Vec<u8>, p: Option<NodePtr>) {
    match p {
        Some(p) => {
            out.push(1);
            put_u64(out, p.pos);
            put_reduce(out, p.reduce);
        }
        None => out.push(0),
    }
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A bounds-checked decoder: running off the end is `Corrupted`, not a panic.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    offset: u64,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], offset: u64, what: &'static str) -> Reader<'a> {
        Reader {
            bytes,
            at: 0,
            offset,
            what,
        }
    }

    pub(crate) fn corrupt(&self, detail: String) -> Error {
        Error::Corrupted {
            offset: self.offset,
            what: format!("{}: {detail}", self.what),
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.corrupt(format!("truncated at byte {}", self.at)));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.corrupt(format!("flag byte {other}"))),
        }
    }

    /// A length-prefixed byte string, as its range in the reader's bytes.
    pub(crate) fn bytes_range(&mut self) -> Result<std::ops::Range<usize>> {
        let len = self.u32()? as usize;
        let start = self.at;
        self.take(len)?;
        Ok(start..self.at)
    }

    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    fn opt_u64(&mut self) -> Result<Option<u64>> {
        Ok(if self.bool()? {
            Some(self.u64()?)
        } else {
            None
        })
    }

    pub(crate) fn reduce(&mut self) -> Result<Reduce> {
        Ok(Reduce {
            live: self.u64()?,
            deleted: self.u64()?,
            bytes: self.u64()?,
        })
    }

    fn opt_ptr(&mut self) -> Result<Option<NodePtr>> {
        if !self.bool()? {
            return Ok(None);
        }
        Ok(Some(NodePtr {
            pos: self.u64()?,
            reduce: self.reduce()?,
        }))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.at == self.bytes.len()
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if !self.is_empty() {
            return Err(self.corrupt(format!("{} trailing bytes", self.bytes.len() - self.at)));
        }
        Ok(())
    }
}

/// A hasher for file offsets (no adversary picks them): one multiply by
/// the 64-bit golden ratio, so low-entropy offsets spread over the high
/// bits the hash table's control bytes use. SipHash was a third of a
/// memo hit.
#[derive(Debug, Default)]
pub struct PositionHasher(u64);

impl std::hash::Hasher for PositionHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
