//! Laying out a batch of document versions on top of a header, and the commit
//! protocol that makes it durable. Shared by the flusher and by compaction's
//! copy and catch-up, so all three write exactly the same structures.

use crate::btree::{self, Action, Tree};
use crate::doc::{self, Counters, DocInfo, IdValue, SeqValue, COUNTERS_DOC};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::format::{AppendFile, Header};
use crate::mutants::{self, Mutant};
use std::collections::BTreeMap;

/// The three trees of a store, shaped by its fan-out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trees {
    pub by_id: Tree,
    pub by_seq: Tree,
    pub local: Tree,
}

impl Trees {
    pub(crate) fn new(fanout: usize) -> Trees {
        let fanout = fanout.max(2);
        Trees {
            by_id: Tree {
                fanout,
                leaf_reduce: doc::by_id_reduce,
            },
            by_seq: Tree {
                fanout,
                leaf_reduce: doc::by_seq_reduce,
            },
            local: Tree {
                fanout,
                leaf_reduce: doc::local_reduce,
            },
        }
    }
}

/// Local-document changes of a batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct LocalChanges {
    /// Set (`Some`) or remove (`None`) local documents, applied first.
    pub docs: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Rewrite [`COUNTERS_DOC`] from the new by-id reduce.
    pub recount: bool,
}

/// What [`apply`] laid out.
#[derive(Clone, Debug)]
pub(crate) struct Applied {
    /// The header to commit; the caller sets timestamp, prev_header and
    /// purge_seq.
    pub header: Header,
    /// Highest seqno of a tombstone purged, if any was.
    pub max_purged: Option<u64>,
}

/// Lay out `docs` (any order; for a repeated key the highest seqno wins) on
/// top of `base`: bodies, then the by-id, by-seq and local trees. Tombstones
/// with seqno <= `purge_upto` are purged: the key is removed from both trees
/// (skipping it instead would leave an older live version visible: a
/// resurrected delete). Nothing is written to the file yet beyond what the
/// buffer spills.
pub(crate) fn apply(
    out: &mut AppendFile,
    trees: &Trees,
    base: &Header,
    docs: Vec<DocInfo>,
    locals: LocalChanges,
    purge_upto: Option<u64>,
    who: Committer,
) -> Result<Applied> {
    let mut latest: BTreeMap<Vec<u8>, DocInfo> = BTreeMap::new();
    for d in docs {
        match latest.get(&d.key) {
            // The checkpoint queue de-duplicates before the flusher sees a
            // batch, so two versions of a key here mean a corrupted queue.
            Some(prev)
                if who == Committer::Flusher
                    && mutants::active(Mutant::FlushRejectsDuplicateKey) =>
            {
                return Err(Error::Invalid(format!(
                    "flush batch holds seqnos {} and {} of one key",
                    prev.seqno, d.seqno
                )));
            }
            Some(prev) if prev.seqno > d.seqno => {}
            _ => {
                latest.insert(d.key.clone(), d);
            }
        }
    }
    let mut id_actions: Vec<Action> = Vec::with_capacity(latest.len());
    let mut seq_actions: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    let mut seq_inserts = Vec::with_capacity(latest.len());
    let mut update_seq = base.update_seq;
    let mut max_purged: Option<u64> = None;
    for (key, d) in latest {
        update_seq = update_seq.max(d.seqno);
        let purge = d.deleted && purge_upto.is_some_and(|bound| d.seqno <= bound);
        if purge {
            if let Some(old) = btree::get(&*out, base.by_id, &key)? {
                seq_actions.insert(doc::seq_key(IdValue::decode(&old)?.seqno), None);
            }
            id_actions.push((key, None));
            max_purged = max_purged.max(Some(d.seqno));
            continue;
        }
        let (body_pos, body_len) = if d.deleted {
            (0, 0)
        } else {
            let len = u32::try_from(d.value.len())
                .map_err(|_| Error::Invalid(format!("value of {} bytes", d.value.len())))?;
            (out.append_chunk(&d.value), len)
        };
        if let Some(old) = btree::get(&*out, base.by_id, &key)? {
            let old = IdValue::decode(&old)?;
            if old.seqno != d.seqno {
                seq_actions.insert(doc::seq_key(old.seqno), None);
            }
        }
        let id = IdValue {
            seqno: d.seqno,
            deleted: d.deleted,
            body_pos,
            body_len,
        };
        let sv = SeqValue {
            key: key.clone(),
            deleted: d.deleted,
            body_pos,
            body_len,
        };
        seq_inserts.push((doc::seq_key(d.seqno), Some(sv.encode())));
        id_actions.push((key, Some(id.encode())));
    }
    // Bodies reach the file in their own write, before any tree node, as
    // couchstore saves documents before it updates the indexes. (So a crash
    // image can hold the new nodes but not the bodies they point to: what a
    // header written before the data fsync would expose.)
    if who == Committer::Flusher {
        failpoint!("flush::before_bodies");
    }
    out.write_out()?;
    if who == Committer::Flusher {
        failpoint!("flush::after_bodies");
    }
    // Inserts after removals, so a (buggy) reused seqno overwrites rather
    // than vanishes: verify and the oracle then see the disagreement.
    seq_actions.extend(seq_inserts);
    let seq_actions: Vec<Action> = seq_actions.into_iter().collect();
    let by_id = trees.by_id.modify(out, base.by_id, &id_actions)?;
    let by_seq = trees.by_seq.modify(out, base.by_seq, &seq_actions)?;

    let mut local_actions: BTreeMap<Vec<u8>, Option<Vec<u8>>> = locals.docs.into_iter().collect();
    if locals.recount {
        let reduce = by_id.map(|p| p.reduce).unwrap_or_default();
        let counters = Counters {
            live: reduce.live,
            deleted: reduce.deleted,
        };
        local_actions.insert(COUNTERS_DOC.to_vec(), Some(counters.encode()));
    }
    let local_actions: Vec<Action> = local_actions.into_iter().collect();
    let local = trees.local.modify(out, base.local, &local_actions)?;
    Ok(Applied {
        header: Header {
            update_seq,
            purge_seq: base.purge_seq,
            timestamp: base.timestamp,
            prev_header: base.prev_header,
            by_id,
            by_seq,
            local,
        },
        max_purged,
    })
}

/// Who is committing: the flusher hits the `flush::*` failpoints and is the
/// only one the flush-path seeded bugs affect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Committer {
    Flusher,
    Compactor,
}

fn sync(out: &AppendFile, who: Committer) -> Result<()> {
    match out.file().sync() {
        Ok(()) => Ok(()),
        Err(_) if who == Committer::Flusher && mutants::active(Mutant::FsyncErrorIgnored) => Ok(()),
        Err(e) => Err(Error::Io {
            op: "fsync",
            source: e,
        }),
    }
}

/// The commit protocol: write the tree nodes `apply` laid out (the bodies
/// are already written), fsync, write the header at the next block boundary,
/// fsync. Returns the header's offset. The commit is durable (and may be
/// acknowledged) only if this returns Ok.
pub(crate) fn commit(out: &mut AppendFile, header: &Header, who: Committer) -> Result<u64> {
    let flusher = who == Committer::Flusher;
    out.write_out()?;
    if flusher {
        failpoint!("flush::before_data_sync");
    }
    if !(flusher && mutants::active(Mutant::HeaderBeforeDataSync)) {
        sync(out, who)?;
    }
    if flusher {
        failpoint!("flush::after_data_sync");
        failpoint!("flush::before_header");
    }
    let pos = out.append_header(header)?;
    out.write_out()?;
    if flusher {
        failpoint!("flush::after_header");
        failpoint!("flush::before_header_sync");
    }
    if !(flusher && mutants::active(Mutant::HeaderSyncSkipped)) {
        sync(out, who)?;
    }
    if flusher {
        failpoint!("flush::after_header_sync");
    }
    Ok(pos)
}
