//! What the oracle reads: every header of a store, each verified while it
//! is read, through the engine's public API only. The speed of a check is
//! decided here: one walk per header, and none for a header whose bytes
//! were walked before and have not changed since.
//!
//! # Why the cache is exact (incremental checking)
//! [`ExtractCache`] keeps, per file and header position, what the verifying
//! walk of that header returned, with the file's change generation before
//! the walk and the walk's extent (every byte it read lies below: the
//! header's block, so its roots and every node, which the engine requires
//! below their parents, and every body). The walk is a function of those
//! bytes and the store's configuration (fixed for a scenario). The disk
//! notes every change to a byte a file already held (a write that changes
//! it, a truncation, a failed fsync that reverts pages, every crash image,
//! a bit flip): `unchanged_prefix(generation)` is how far no byte changed
//! since. A cached walk is reused only when its whole extent is unchanged,
//! so it is the walk that would run now, byte for byte; a walk that failed
//! is never cached. This holds across crashes: the image a crash leaves is
//! compared with the bytes before it, and only what it kept unchanged
//! survives in the cache, so a check after a crash is still a full check of
//! every header (the oracle judges them all) that only skips decoding bytes
//! it decoded before. What it no longer does is re-read those bytes, so a
//! transient read fault the disk would have injected into the harness's
//! own re-read is not drawn (it was never judged: a read cut short is
//! logged and skipped). Files whose file system cannot tell (`StdVfs`)
//! are never cached.

use crate::fixture::DB_DIR;
use engine::layout::BLOCK_BYTES;
use engine::{Header, Snapshot, Store};
use failpoints::SimVfs;
use oracle::{RecoveredHeader, RecoveredStore};
use std::collections::HashMap;
use std::path::Path;

/// What one verifying walk of a header returned (the header's own fields
/// are read afresh each time).
#[derive(Debug)]
struct Walked {
    generation: u64,
    extent: u64,
    docs: oracle::State,
    by_seq: Vec<oracle::BySeqEntry>,
    counters: oracle::Counters,
    locals: oracle::Locals,
}

/// Verified walks of headers by (file, header position), for one scenario
/// (see the module documentation).
#[derive(Debug, Default)]
pub struct ExtractCache {
    walks: HashMap<(u64, Header), Walked>,
    /// Headers as read and verified from disk, by (file, position), with
    /// the file's generation before the read.
    headers: HashMap<(u64, u64), (u64, Header)>,
    /// Chunks the walks read, by position, for walks of new headers (they
    /// share most nodes and bodies with the headers before them): valid
    /// for the file and generation in `chunks_at`, trimmed to the prefix
    /// unchanged since then before each use (the same argument as above,
    /// per chunk).
    chunks: engine::ChunkMemo,
    chunks_at: Option<(u64, u64)>,
    /// Headers taken from the cache and walked, for tests and reports.
    pub hits: u64,
    /// Headers walked.
    pub misses: u64,
}

impl ExtractCache {
    /// Chunks the walks took from the chunk memo and read from the file,
    /// and subtrees whose walk the memo served.
    pub fn chunk_counts(&self) -> (u64, u64, u64) {
        self.chunks.counts()
    }
}

/// What a header's walk depends on besides the bytes below its extent: its
/// roots (positions and reduces) and its update_seq (no seqno above it).
/// Where the header sits does not matter (its roots were checked below it
/// when it was read), so recovery's fresh copy of a header reuses the walk
/// of the original.
fn walk_key(header: &Header) -> Header {
    Header {
        purge_seq: 0,
        timestamp: 0,
        prev_header: None,
        ..header.clone()
    }
}

/// Every header of `store` as the oracle sees it, each verified while it is
/// read (one walk per header: trees, agreement, reduces, counters); a
/// document's value goes through `value(bytes, deleted)` (the real-file
/// tools store digests of values).
pub fn extract_headers(
    store: &Store,
    value: impl Fn(Vec<u8>, bool) -> Vec<u8>,
) -> engine::Result<Vec<RecoveredHeader>> {
    extract_headers_cached(store, value, None)
}

/// [`extract_headers`], reusing (and filling) `cache` where the bytes a
/// header's walk read are unchanged.
pub fn extract_headers_cached(
    store: &Store,
    value: impl Fn(Vec<u8>, bool) -> Vec<u8>,
    mut cache: Option<&mut ExtractCache>,
) -> engine::Result<Vec<RecoveredHeader>> {
    let version = if cache.is_some() {
        store.file_version()?
    } else {
        None
    };
    if let Some((v, cache)) = version.zip(cache.as_deref_mut()) {
        match cache.chunks_at {
            Some((file, generation)) if file == v.file => {
                cache.chunks.forget_from(unchanged(store, generation)?);
            }
            _ => cache.chunks.clear(),
        }
        cache.chunks_at = Some((v.file, v.generation));
    }
    let mut headers = Vec::new();
    for h in store.headers()? {
        let Some((v, cache)) = version.zip(cache.as_deref_mut()) else {
            let snap = store.snapshot_at_header(h.pos)?;
            headers.push(walk(&snap, &h.header, &value, None, None)?);
            continue;
        };
        // The header itself as read and verified from disk (checksum, roots
        // below it and readable), again unless its block is unchanged since.
        let mut snap = None;
        let disk_header = match cache.headers.get(&(v.file, h.pos)) {
            Some((generation, header))
                if unchanged(store, *generation)? >= h.pos.saturating_add(BLOCK_BYTES) =>
            {
                header.clone()
            }
            _ => {
                let s = store.snapshot_at_header(h.pos)?;
                let header = s.header().clone();
                if unchanged(store, v.generation)? >= h.pos.saturating_add(BLOCK_BYTES) {
                    cache
                        .headers
                        .insert((v.file, h.pos), (v.generation, header.clone()));
                }
                snap = Some(s);
                header
            }
        };
        let key = (v.file, walk_key(&disk_header));
        if let Some(walked) = cache.walks.get(&key) {
            if unchanged(store, walked.generation)? >= walked.extent {
                cache.hits += 1;
                headers.push(RecoveredHeader {
                    update_seq: h.header.update_seq,
                    purge_seq: h.header.purge_seq,
                    timestamp_secs: h.header.timestamp,
                    docs: walked.docs.clone(),
                    by_seq: walked.by_seq.clone(),
                    counters: walked.counters,
                    locals: walked.locals.clone(),
                });
                continue;
            }
        }
        cache.misses += 1;
        let snap = match snap {
            Some(s) => s,
            None => store.snapshot_at_header(h.pos)?,
        };
        let mut fresh = None;
        let header = walk(
            &snap,
            &h.header,
            &value,
            Some(&mut fresh),
            Some(&mut cache.chunks),
        )?;
        if let Some((extent, walked)) = fresh {
            // Cached only if nothing it read changed while it ran.
            if unchanged(store, v.generation)? >= extent {
                cache.walks.insert(
                    key,
                    Walked {
                        generation: v.generation,
                        extent,
                        docs: walked.docs,
                        by_seq: walked.by_seq,
                        counters: walked.counters,
                        locals: walked.locals,
                    },
                );
            }
        }
        headers.push(header);
    }
    Ok(headers)
}

/// One header as the oracle sees it, verified while it is read (see
/// [`extract_headers`]).
pub fn recovered_header(
    snapshot: &Snapshot,
    value: impl Fn(Vec<u8>, bool) -> Vec<u8>,
) -> engine::Result<RecoveredHeader> {
    walk(snapshot, &snapshot.header().clone(), &value, None, None)
}

/// How far the store's current file is unchanged since `generation`.
fn unchanged(store: &Store, generation: u64) -> engine::Result<u64> {
    Ok(store.unchanged_prefix(generation)?.unwrap_or(0))
}

/// One verifying walk of `snap`, as the oracle's header with the fields of
/// `header`; with `fresh`, also the walk's extent and a copy for the cache.
fn walk(
    snap: &engine::Snapshot,
    header: &Header,
    value: &impl Fn(Vec<u8>, bool) -> Vec<u8>,
    fresh: Option<&mut Option<(u64, RecoveredHeader)>>,
    chunks: Option<&mut engine::ChunkMemo>,
) -> engine::Result<RecoveredHeader> {
    let (report, contents) = match chunks {
        Some(memo) => snap.verify_with_contents_memo(memo)?,
        None => snap.verify_with_contents()?,
    };
    let docs: oracle::State = contents
        .docs
        .into_iter()
        .map(|d| {
            let doc = oracle::Doc {
                value: value(d.value, d.deleted),
                seqno: d.seqno,
                deleted: d.deleted,
            };
            (d.key, doc)
        })
        .collect();
    let by_seq = by_seq_entries(contents.by_seq);
    // The counters as a reader looks them up (the local document by name),
    // not the ones verify's walk of the local tree found: verify checks
    // those against its recount, the oracle checks these against its own,
    // so both ways of reading a local document are judged.
    let counters = snap.counters()?.unwrap_or_default();
    let recovered = RecoveredHeader {
        update_seq: header.update_seq,
        purge_seq: header.purge_seq,
        timestamp_secs: header.timestamp,
        docs,
        by_seq,
        counters: oracle::Counters {
            live: counters.live,
            deleted: counters.deleted,
        },
        locals: contents
            .locals
            .into_iter()
            .map(|(name, v)| (name, value(v, false)))
            .collect(),
    };
    if let Some(fresh) = fresh {
        *fresh = Some((report.extent, recovered.clone()));
    }
    Ok(recovered)
}

/// Everything the oracle needs, read through the engine's public API only.
pub fn extract(store: &Store, sim: &SimVfs, list_files: bool) -> engine::Result<RecoveredStore> {
    extract_cached(store, sim, list_files, None)
}

/// [`extract`] with a per-scenario [`ExtractCache`].
pub fn extract_cached(
    store: &Store,
    sim: &SimVfs,
    list_files: bool,
    cache: Option<&mut ExtractCache>,
) -> engine::Result<RecoveredStore> {
    let headers = extract_headers_cached(store, |value, _| oracle_value(value), cache)?;
    let files = if list_files {
        sim.as_vfs().list(Path::new(DB_DIR)).ok()
    } else {
        None
    };
    Ok(RecoveredStore { headers, files })
}

/// Values longer than this reach the oracle as a digest.
pub const ORACLE_VALUE_INLINE_BYTES: usize = 64;

/// A value as the oracle keeps it: itself up to
/// [`ORACLE_VALUE_INLINE_BYTES`], else its length and 128-bit XXH3. The
/// model keeps every committed state, so large values (the large profile's
/// 64 KiB ones, hundreds a batch) would cost gigabytes; a digest keeps
/// equality (two values are equal exactly when their digests are,
/// collisions aside) at 24 bytes. Not a cryptographic hash, and it need not
/// be: nothing here is adversarial, and a wrong value differs from the right
/// one in a way a 128-bit hash with full avalanche tells apart with
/// probability 1 - 2^-128. It replaced SHA-256, which was 14 % of the
/// explorer's time (every value of every header, at every check). The
/// runner's journal and every extract map values the same way.
pub fn oracle_value(value: Vec<u8>) -> Vec<u8> {
    if value.len() <= ORACLE_VALUE_INLINE_BYTES {
        return value;
    }
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&(value.len() as u64).to_be_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_128(&value).to_be_bytes());
    out
}

/// The engine's by-seq entries as the oracle's.
pub(crate) fn by_seq_entries(entries: Vec<engine::SeqEntry>) -> Vec<oracle::BySeqEntry> {
    entries
        .into_iter()
        .map(|e| oracle::BySeqEntry {
            seqno: e.seqno,
            key: e.key,
            deleted: e.deleted,
        })
        .collect()
}
