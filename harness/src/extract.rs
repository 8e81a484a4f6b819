//! What the oracle reads: every header of a store, each verified while it
//! is read, through the engine's public API only. The speed of a check is
//! decided here (one walk per header).

use crate::runner::DB_DIR;
use engine::Store;
use failpoints::SimVfs;
use oracle::{RecoveredHeader, RecoveredStore};
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
        let (_, contents) = store.snapshot_at_header(h.pos)?.verify_with_contents()?;
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
        let counters = contents.counters.unwrap_or_default();
        headers.push(RecoveredHeader {
            update_seq: h.header.update_seq,
            purge_seq: h.header.purge_seq,
            timestamp_secs: h.header.timestamp,
            docs,
            by_seq,
            counters: oracle::Counters {
                live: counters.live,
                deleted: counters.deleted,
            },
        });
    }
    Ok(headers)
}

/// Everything the oracle needs, read through the engine's public API only.
pub fn extract(store: &Store, sim: &SimVfs, list_files: bool) -> engine::Result<RecoveredStore> {
    let headers = extract_headers(store, |value, _| value)?;
    let files = if list_files {
        sim.as_vfs().list(Path::new(DB_DIR)).ok()
    } else {
        None
    };
    Ok(RecoveredStore { headers, files })
}
