//! `inspect`: what `couch_dbdump` and `couch_dbck` give couchstore users.
//! Lists every header block of a file, forwards, with its fields or why it is
//! damaged, and verifies the trees of every valid header.

use crate::commit::Trees;
use crate::error::{Error, Result};
use crate::format::{Header, BLOCK_BYTES, MARKER_HEADER};
use crate::recovery;
use crate::snapshot::{Snapshot, VerifyReport};
use crate::vfs::{OpenMode, Vfs};
use std::fmt;
use std::path::Path;

/// One header block found in a file.
#[derive(Debug)]
pub struct HeaderEntry {
    /// Offset of the block.
    pub pos: u64,
    /// The header, or why it is not valid.
    pub header: Result<Header>,
    /// Tree verification of a valid header.
    pub verify: Option<Result<VerifyReport>>,
}

/// Everything `inspect` found.
#[derive(Debug)]
pub struct InspectReport {
    /// File length in bytes.
    pub file_bytes: u64,
    /// Header blocks, oldest first.
    pub headers: Vec<HeaderEntry>,
}

impl InspectReport {
    /// The newest header that is valid and verifies, as recovery would pick
    /// it (recovery checks only the roots, so it may pick a newer one).
    pub fn newest_good(&self) -> Option<&HeaderEntry> {
        self.headers
            .iter()
            .rev()
            .find(|h| h.header.is_ok() && matches!(h.verify, Some(Ok(_))))
    }

    /// Whether every header block is valid and verifies.
    pub fn all_good(&self) -> bool {
        self.headers
            .iter()
            .all(|h| h.header.is_ok() && matches!(h.verify, Some(Ok(_))))
    }
}

/// Inspect the store file at `path` (read only). `fanout` does not matter for
/// reading; any value works.
pub fn inspect(vfs: &dyn Vfs, path: &Path) -> Result<InspectReport> {
    let file = vfs
        .open(path, OpenMode::Read)
        .map_err(Error::io("open for inspect"))?;
    let file_bytes = file.len().map_err(Error::io("file length"))?;
    let mut headers = Vec::new();
    let mut pos = 0;
    while pos < file_bytes {
        let mut marker = [0u8; 1];
        file.read_exact_at(&mut marker, pos)
            .map_err(Error::io("read block marker"))?;
        if marker[0] == MARKER_HEADER {
            let header = recovery::read_verified_header(&file, pos);
            let verify = header.as_ref().ok().map(|h| {
                Snapshot {
                    file: file.clone(),
                    header: h.clone(),
                    pos: Some(pos),
                    trees: Trees::new(2),
                }
                .verify()
            });
            headers.push(HeaderEntry {
                pos,
                header,
                verify,
            });
        }
        pos += BLOCK_BYTES;
    }
    Ok(InspectReport {
        file_bytes,
        headers,
    })
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "file: {} bytes, {} header block(s)",
            self.file_bytes,
            self.headers.len()
        )?;
        for h in &self.headers {
            match &h.header {
                Ok(hd) => {
                    write!(
                        f,
                        "  @{:<10} update_seq={} purge_seq={} ts={} prev={}",
                        h.pos,
                        hd.update_seq,
                        hd.purge_seq,
                        hd.timestamp,
                        hd.prev_header.map_or("-".to_string(), |p| p.to_string())
                    )?;
                    match &h.verify {
                        Some(Ok(r)) => writeln!(
                            f,
                            " live={} deleted={} bytes={} by_seq={} local={} ok",
                            r.live, r.deleted, r.bytes, r.by_seq_entries, r.local_docs
                        )?,
                        Some(Err(e)) => writeln!(f, " VERIFY FAILED: {e}")?,
                        None => writeln!(f)?,
                    }
                }
                Err(e) => writeln!(f, "  @{:<10} DAMAGED: {e}", h.pos)?,
            }
        }
        Ok(())
    }
}
