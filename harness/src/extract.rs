//! What the oracle reads: every header of a store, each verified while it
//! is read, through the engine's public API only. The speed of a check is
//! decided here (one walk per header).

use crate::fixture::DB_DIR;
use engine::{Snapshot, Store};
use failpoints::SimVfs;
use oracle::{RecoveredHeader, RecoveredStore};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Every header of `store` as the oracle sees it, each verified while it is
/// read (one walk per header: trees, agreement, reduces, counters); a
/// document's value goes through `value(bytes, deleted)` (the real-file
/// tools store digests of values).
pub fn extract_headers(
    store: &Store,
    value: impl Fn(Vec<u8>, bool) -> Vec<u8>,
) -> engine::Result<Vec<RecoveredHeader>> {
    let mut headers = Vec::new();
    for h in store.headers()? {
        headers.push(recovered_header(&store.snapshot_at_header(h.pos)?, &value)?);
    }
    Ok(headers)
}

/// One header as the oracle sees it, verified while it is read (see
/// [`extract_headers`]).
pub fn recovered_header(
    snapshot: &Snapshot,
    value: impl Fn(Vec<u8>, bool) -> Vec<u8>,
) -> engine::Result<RecoveredHeader> {
    let (_, contents) = snapshot.verify_with_contents()?;
    let header = snapshot.header();
    let docs = contents
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
    let by_seq = contents
        .by_seq
        .into_iter()
        .map(|e| oracle::BySeqEntry {
            seqno: e.seqno,
            key: e.key,
            deleted: e.deleted,
        })
        .collect();
    // The counters as a reader looks them up (the local document by name),
    // not the ones verify's walk of the local tree found: verify checks
    // those against its recount, the oracle checks these against its own,
    // so both ways of reading a local document are judged.
    let counters = snapshot.counters()?.unwrap_or_default();
    Ok(RecoveredHeader {
        update_seq: header.update_seq,
        purge_seq: header.purge_seq,
        timestamp_secs: header.timestamp,
        docs,
        by_seq,
        counters: oracle::Counters {
            live: counters.live,
            deleted: counters.deleted,
        },
    })
}

/// Everything the oracle needs, read through the engine's public API only.
pub fn extract(store: &Store, sim: &SimVfs, list_files: bool) -> engine::Result<RecoveredStore> {
    let headers = extract_headers(store, |value, _| oracle_value(value))?;
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
/// [`ORACLE_VALUE_INLINE_BYTES`], else its length and SHA-256. The model
/// keeps every committed state, so large values (the large profile's 64 KiB
/// ones, hundreds a batch) would cost gigabytes; a digest keeps equality
/// (two values are equal exactly when their digests are, collisions
/// aside) at 40 bytes. The runner's journal and every extract map values the
/// same way.
pub fn oracle_value(value: Vec<u8>) -> Vec<u8> {
    if value.len() <= ORACLE_VALUE_INLINE_BYTES {
        return value;
    }
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(&(value.len() as u64).to_be_bytes());
    out.extend_from_slice(&Sha256::digest(&value));
    out
}
