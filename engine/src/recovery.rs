//! Opening a file: find the newest header whose checksum and roots verify,
//! fall back past damaged ones, and durably cut off the tail after it.
//!
//! # Never trust the page cache after a failed fsync
//! On Linux a failed fsync leaves the pages it could not write in the page
//! cache *marked clean*: reads return the new bytes, a later fsync returns
//! Ok without writing them, and only a power loss tells. A process that saw
//! its fsync fail poisons its store and never acknowledges, but it may die
//! right after (or be restarted), and the next process's recovery then
//! finds the never-written header in the page cache. Its own fsync would
//! "succeed", readers would see the commit, and a power cut would take it
//! back.
//!
//! Recovery cannot tell a failed-clean page from a durable one, so it makes
//! the header it chose durable *by writing it again*: it appends a copy of
//! the newest valid header (same roots, update_seq and timestamp; its
//! previous header is the original's previous, so the chain skips the
//! original) in a fresh block after it, then fsyncs. A fresh write dirties
//! its page, so the fsync writes it or fails. The copy is an append, never
//! an overwrite: rewriting the original in place would risk tearing an
//! acknowledged header on a device without power-safe overwrite. The
//! header's data needs no copy: the data fsync before the header succeeded
//! (otherwise the flusher never wrote the header), and the only pages a
//! failed *header* fsync can leave clean are the header's own block, which
//! no data shares (see [`crate::format::AppendFile`]). Failed data pages
//! after a failed *data* fsync carry no header: recovery picks the older
//! header and truncates them. The cost is one block and nothing else per
//! open; [`Recovered::end`] is the end of the copy.
//!
//! # A read error is not the end of the file
//! If a read fails during the backward scan (EIO, a latent sector error),
//! recovery fails with [`Error::Io`]: the unreadable blocks may hold the
//! newest acknowledged header, and treating them as garbage would truncate
//! it away durably. The open can be retried once the error clears.

use crate::btree;
use crate::config::RecoveryPolicy;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::format::{self, Header, BLOCK_BYTES, CHUNK_PREFIX_BYTES, MARKER_HEADER};
use crate::mutants::{self, Mutant};
use crate::vfs::VfsFile;
use std::sync::Arc;

/// Block starts read per call while scanning backwards.
const SCAN_WINDOW_BLOCKS: u64 = 64;

/// What recovery found in a file.
#[derive(Clone, Debug)]
pub struct Recovered {
    /// The newest valid header (the empty header if there is none).
    pub header: Header,
    /// Its offset, if there is one.
    pub pos: Option<u64>,
    /// Where the next append goes (the end of the header chunk).
    pub end: u64,
    /// Bytes cut off after the header.
    pub truncated_bytes: u64,
    /// Damaged header blocks skipped on the way.
    pub damaged_headers: Vec<u64>,
}

/// The raw offset just past the header chunk at `pos`.
pub(crate) fn header_end(pos: u64, header: &Header) -> u64 {
    pos + 1 + CHUNK_PREFIX_BYTES as u64 + header.encode().len() as u64
}

/// Read the header at `pos` and check that its roots are readable nodes.
pub fn read_verified_header(file: &Arc<dyn VfsFile>, pos: u64) -> Result<Header> {
    let check_crc = !mutants::active(Mutant::TornHeaderAccepted);
    let header = format::read_header(file.as_ref(), pos, check_crc)?;
    for root in [header.by_id, header.by_seq, header.local]
        .into_iter()
        .flatten()
    {
        if root.pos >= pos {
            return Err(Error::Corrupted {
                offset: pos,
                what: format!("header root at {} is not below the header", root.pos),
            });
        }
        btree::check_node(file, root)?;
    }
    Ok(header)
}

std::thread_local! {
    /// The scan window's buffer, kept between scans of this thread: zeroing
    /// a fresh one for every open cost more than the scan's own work. Taken
    /// out while a scan runs (so a second scan on this thread, say from
    /// another shuttle task, gets its own).
    static SCAN_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Scan `file` backwards for the newest valid header (no writes).
pub fn find_header(file: &Arc<dyn VfsFile>) -> Result<Recovered> {
    let mut buffer = SCAN_BUFFER.with(std::cell::Cell::take);
    let found = scan_for_header(file, &mut buffer);
    SCAN_BUFFER.with(|b| b.set(buffer));
    found
}

fn scan_for_header(file: &Arc<dyn VfsFile>, buffer: &mut Vec<u8>) -> Result<Recovered> {
    let len = file.len().map_err(Error::io("file length"))?;
    let mut damaged = Vec::new();
    let mut next = (len > 0).then(|| (len - 1) / BLOCK_BYTES * BLOCK_BYTES);
    while let Some(hi) = next {
        let lo = hi.saturating_sub((SCAN_WINDOW_BLOCKS - 1) * BLOCK_BYTES);
        let size = (hi + 1 - lo) as usize;
        if buffer.len() < size {
            buffer.resize(size, 0);
        }
        // Whatever an earlier scan left in it is overwritten by the read, or
        // not looked at (the read failed).
        let window = &mut buffer[..size];
        match file.read_exact_at(window, lo) {
            Ok(()) => {}
            // A file shrunk under us reads short: go on with what is left.
            Err(_) if mutants::active(Mutant::ReadErrorAsEof) => {
                next = (lo > 0).then(|| lo - BLOCK_BYTES);
                continue;
            }
            Err(e) => return Err(Error::io("scan for headers")(e)),
        }
        let mut block = hi;
        loop {
            if window[(block - lo) as usize] == MARKER_HEADER {
                match read_verified_header(file, block) {
                    Ok(header) => {
                        return Ok(Recovered {
                            end: header_end(block, &header),
                            header,
                            pos: Some(block),
                            truncated_bytes: 0,
                            damaged_headers: damaged,
                        })
                    }
                    Err(e) if e.is_corruption() => {
                        if mutants::active(Mutant::NoHeaderFallback) {
                            return Err(e);
                        }
                        damaged.push(block);
                        if mutants::active(Mutant::RecoveryScanStuck) {
                            // Damaged: on to the next candidate.
                            continue;
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            if block == lo {
                break;
            }
            block -= BLOCK_BYTES;
        }
        next = if mutants::active(Mutant::ScanWindowGap) {
            // On to the window below this one.
            lo.checked_sub(SCAN_WINDOW_BLOCKS * BLOCK_BYTES)
        } else {
            (lo > 0).then(|| lo - BLOCK_BYTES)
        };
    }
    Ok(Recovered {
        header: Header::empty(),
        pos: None,
        end: 0,
        truncated_bytes: 0,
        damaged_headers: damaged,
    })
}

/// Find the newest valid header and, per `policy`, durably truncate the tail.
pub fn recover(file: &Arc<dyn VfsFile>, policy: RecoveryPolicy) -> Result<Recovered> {
    let mut found = find_header(file)?;
    let len = file.len().map_err(Error::io("file length"))?;
    if policy == RecoveryPolicy::Strict {
        if let Some(&offset) = found.damaged_headers.first() {
            return Err(Error::Corrupted {
                offset,
                what: "damaged header after the newest valid one (strict recovery)".into(),
            });
        }
        if found.end < len && mutants::active(Mutant::StrictRefusesCleanTail) {
            return Err(Error::Corrupted {
                offset: found.end,
                what: format!(
                    "{} unexpected bytes after the newest header (strict recovery)",
                    len - found.end
                ),
            });
        }
    }
    if found.end < len {
        failpoint!("recovery::before_truncate");
        file.set_len(found.end)
            .map_err(Error::io("truncate tail"))?;
        found.truncated_bytes = len - found.end;
    }
    // Make what recovery chose durable, truncation included: the recovered
    // header may have been found in the page cache of a crashed process, and
    // once readers saw it a later crash must not take it back. A page a
    // failed fsync left clean is not written by a later fsync: write the
    // header again, as an append (see the module doc).
    if let Some(pos) = found.pos {
        if !mutants::active(Mutant::TrustPageCacheAfterFsyncFailure) {
            // The same header, previous header included (the chain skips
            // the original).
            let copy = found.header.clone();
            let mut out = format::AppendFile::new(file.clone(), found.end);
            let copy_pos = out.append_header(&copy)?;
            out.write_out()?;
            debug_assert!(copy_pos > pos);
            found.pos = Some(copy_pos);
            found.end = header_end(copy_pos, &copy);
        }
    }
    if !mutants::active(Mutant::TruncateNotDurable) {
        file.sync().map_err(Error::io("fsync after recovery"))?;
    }
    if found.truncated_bytes > 0 {
        failpoint!("recovery::after_truncate");
    }
    Ok(found)
}
