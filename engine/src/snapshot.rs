//! Read-only views of one header, and `verify`, the whole-header integrity
//! check.

use crate::btree;
use crate::commit::Trees;
use crate::doc::{self, Counters, DocInfo, IdValue, SeqEntry, SeqValue, COUNTERS_DOC};
use crate::error::{Error, Result};
use crate::format::{self, ChunkSource, Header, Reduce};
use crate::memo::{self, ChunkMemo};
use crate::vfs::VfsFile;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// Everything a header holds, as [`Snapshot::verify_with_contents`] read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// Every document, tombstones included, in key order.
    pub docs: Vec<DocInfo>,
    /// The by-seq tree, in seqno order.
    pub by_seq: Vec<SeqEntry>,
    /// The counters local document, if present.
    pub counters: Option<Counters>,
    /// Every other local document, by name.
    pub locals: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A header and the file it lives in: a consistent, immutable view.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) file: Arc<dyn VfsFile>,
    pub(crate) header: Header,
    pub(crate) pos: Option<u64>,
    pub(crate) trees: Trees,
}

/// What [`Snapshot::verify`] counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Live documents.
    pub live: u64,
    /// Tombstones.
    pub deleted: u64,
    /// Body bytes.
    pub bytes: u64,
    /// Entries in by-seq.
    pub by_seq_entries: u64,
    /// Local documents.
    pub local_docs: u64,
    /// Every byte the walk read lies below this offset: the header's block
    /// (its roots, and so every node, lie below it) and every body. A cache
    /// of the walk's result stays exact while these bytes are unchanged.
    pub extent: u64,
}

impl Snapshot {
    /// The header this snapshot reads.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's offset (None for a store that never committed).
    pub fn header_pos(&self) -> Option<u64> {
        self.pos
    }

    fn load(&self, key: Vec<u8>, id: IdValue) -> Result<DocInfo> {
        self.load_from(&self.file, key, id)
    }

    fn load_from(&self, src: &dyn ChunkSource, key: Vec<u8>, id: IdValue) -> Result<DocInfo> {
        let value = if id.deleted || id.body_len == 0 {
            Vec::new()
        } else {
            let body = src.chunk(id.body_pos)?;
            if body.len() != id.body_len as usize {
                return Err(Error::Corrupted {
                    offset: id.body_pos,
                    what: format!("body of {} bytes, index says {}", body.len(), id.body_len),
                });
            }
            body
        };
        Ok(DocInfo {
            key,
            seqno: id.seqno,
            deleted: id.deleted,
            value,
        })
    }

    /// The newest version of `key`, tombstones included.
    pub fn get(&self, key: &[u8]) -> Result<Option<DocInfo>> {
        match btree::get(&self.file, self.header.by_id, key)? {
            Some(v) => Ok(Some(self.load(key.to_vec(), IdValue::decode(&v)?)?)),
            None => Ok(None),
        }
    }

    /// Every document with a key in `lo..hi`, in key order, tombstones included.
    pub fn scan(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Vec<DocInfo>> {
        let mut ids = Vec::new();
        btree::range(&self.file, self.header.by_id, lo, hi, &mut |k, v| {
            ids.push((k.to_vec(), IdValue::decode(v)?));
            Ok(true)
        })?;
        ids.into_iter().map(|(k, id)| self.load(k, id)).collect()
    }

    /// Every document, in key order, tombstones included.
    pub fn all_docs(&self) -> Result<Vec<DocInfo>> {
        self.scan(Bound::Unbounded, Bound::Unbounded)
    }

    /// At most `limit` raw by-seq entries with seqno > `since`, in order.
    fn seq_values_since(&self, since: u64, limit: usize) -> Result<Vec<(u64, SeqValue)>> {
        let lo = doc::seq_key(since);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        btree::range(
            &self.file,
            self.header.by_seq,
            Bound::Excluded(&lo),
            Bound::Unbounded,
            &mut |k, v| {
                out.push((doc::seq_from_key(k)?, SeqValue::decode(v)?));
                Ok(out.len() < limit)
            },
        )?;
        Ok(out)
    }

    /// The by-seq entries with seqno > `since`, in seqno order.
    pub fn changes_since(&self, since: u64) -> Result<Vec<SeqEntry>> {
        Ok(self
            .seq_values_since(since, usize::MAX)?
            .into_iter()
            .map(|(seqno, sv)| SeqEntry {
                seqno,
                key: sv.key,
                deleted: sv.deleted,
            })
            .collect())
    }

    /// Full documents (bodies loaded) changed after `since`, in seqno order.
    pub fn changed_docs_since(&self, since: u64) -> Result<Vec<DocInfo>> {
        self.changed_docs_range(since, usize::MAX)
    }

    /// At most `limit` full documents changed after `since`, in seqno order:
    /// how compaction copies in bounded steps.
    pub fn changed_docs_range(&self, since: u64, limit: usize) -> Result<Vec<DocInfo>> {
        let out = self.seq_values_since(since, limit)?;
        out.into_iter()
            .map(|(seqno, sv)| {
                let id = IdValue {
                    seqno,
                    deleted: sv.deleted,
                    body_pos: sv.body_pos,
                    body_len: sv.body_len,
                };
                self.load(sv.key, id)
            })
            .collect()
    }

    /// Every local document, by name.
    pub fn locals(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        btree::range(
            &self.file,
            self.header.local,
            Bound::Unbounded,
            Bound::Unbounded,
            &mut |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                Ok(true)
            },
        )?;
        Ok(out)
    }

    /// One local document.
    pub fn local(&self, name: &[u8]) -> Result<Option<Vec<u8>>> {
        btree::get(&self.file, self.header.local, name)
    }

    /// The counters local document, if the header has one.
    pub fn counters(&self) -> Result<Option<Counters>> {
        self.local(COUNTERS_DOC)?
            .map(|b| Counters::decode(&b))
            .transpose()
    }

    /// Walk every tree of this header: key order, separator keys and reduces
    /// of each tree; by-id and by-seq agree one to one; every body is
    /// readable with the size the index says; the counters document equals a
    /// recount; seqnos are within update_seq.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with_contents().map(|(report, _)| report)
    }

    /// [`Snapshot::verify`], also returning everything it read: one walk of
    /// each tree instead of a verify and then a full read (the simulator
    /// does both after every crash).
    pub fn verify_with_contents(&self) -> Result<(VerifyReport, Contents)> {
        self.verify_with_contents_from(&self.file, None)
    }

    /// [`Snapshot::verify_with_contents`], reading chunks through `memo`
    /// (see [`ChunkMemo`] for what keeps it exact): the same checks on the
    /// same bytes, each chunk read and checksummed once across walks.
    pub fn verify_with_contents_memo(
        &self,
        memo: &mut ChunkMemo,
    ) -> Result<(VerifyReport, Contents)> {
        let (src, subtrees) = memo::split(self.file.as_ref(), memo);
        self.verify_with_contents_from(&src, Some(&subtrees))
    }

    fn verify_tree(
        tree: &btree::Tree,
        tag: btree::TreeTag,
        root: Option<format::NodePtr>,
        src: &dyn ChunkSource,
        memo: Option<&RefCell<&mut btree::Subtrees>>,
        visit: &mut btree::Visit<'_, ()>,
    ) -> Result<Reduce> {
        match memo {
            Some(subtrees) => tree.verify_memo(src, subtrees, tag, root, visit),
            None => tree.verify(src, root, visit),
        }
    }

    fn verify_with_contents_from(
        &self,
        src: &dyn ChunkSource,
        memo: Option<&RefCell<&mut btree::Subtrees>>,
    ) -> Result<(VerifyReport, Contents)> {
        use btree::TreeTag;
        let h = &self.header;
        let mut ids: BTreeMap<Vec<u8>, IdValue> = BTreeMap::new();
        let by_id = &self.trees.by_id;
        let id_reduce =
            Self::verify_tree(by_id, TreeTag::ById, h.by_id, src, memo, &mut |k, v| {
                ids.insert(k.to_vec(), IdValue::decode(v)?);
                Ok(())
            })?;
        for (key, id) in &ids {
            if id.seqno > h.update_seq || id.seqno == 0 {
                return Err(Error::Verify(format!(
                    "key {key:?} has seqno {} outside 1..={}",
                    id.seqno, h.update_seq
                )));
            }
        }
        let mut extent = self
            .pos
            .map_or(0, |pos| pos.saturating_add(format::BLOCK_BYTES));
        let mut docs = Vec::with_capacity(ids.len());
        for (key, id) in &ids {
            if !id.deleted && id.body_len > 0 {
                extent = extent.max(format::chunk_end(id.body_pos, u64::from(id.body_len))?);
            }
            docs.push(self.load_from(src, key.clone(), *id)?);
        }
        let mut seqs: BTreeMap<Vec<u8>, (u64, SeqValue)> = BTreeMap::new();
        let mut by_seq_entries = 0u64;
        let mut by_seq = Vec::new();
        let by_seq_tree = &self.trees.by_seq;
        let seq_reduce = Self::verify_tree(
            by_seq_tree,
            TreeTag::BySeq,
            h.by_seq,
            src,
            memo,
            &mut |k, v| {
                let seqno = doc::seq_from_key(k)?;
                let sv = SeqValue::decode(v)?;
                by_seq_entries += 1;
                by_seq.push(SeqEntry {
                    seqno,
                    key: sv.key.clone(),
                    deleted: sv.deleted,
                });
                if let Some((other, _)) = seqs.insert(sv.key.clone(), (seqno, sv)) {
                    return Err(Error::Verify(format!(
                        "by-seq holds key twice (seqnos {other} and {seqno})"
                    )));
                }
                Ok(())
            },
        )?;
        if seqs.len() != ids.len() {
            return Err(Error::Verify(format!(
                "by-id has {} keys, by-seq {}",
                ids.len(),
                seqs.len()
            )));
        }
        for (key, id) in &ids {
            let agrees = seqs.get(key).is_some_and(|(seqno, sv)| {
                *seqno == id.seqno
                    && sv.deleted == id.deleted
                    && sv.body_pos == id.body_pos
                    && sv.body_len == id.body_len
            });
            if !agrees {
                return Err(Error::Verify(format!(
                    "by-id entry of key {key:?} (seqno {}) has no matching by-seq entry",
                    id.seqno
                )));
            }
        }
        if id_reduce.live != seq_reduce.live || id_reduce.deleted != seq_reduce.deleted {
            return Err(Error::Verify(format!(
                "by-id reduce {id_reduce:?} differs from by-seq reduce {seq_reduce:?}"
            )));
        }
        let mut local_docs = 0u64;
        let mut counters = None;
        let mut locals = Vec::new();
        let local = &self.trees.local;
        let local_reduce: Reduce =
            Self::verify_tree(local, TreeTag::Local, h.local, src, memo, &mut |k, v| {
                local_docs += 1;
                if k == COUNTERS_DOC {
                    counters = Some(Counters::decode(v)?);
                } else {
                    locals.push((k.to_vec(), v.to_vec()));
                }
                Ok(())
            })?;
        debug_assert_eq!(local_reduce.live, local_docs);
        let recount = Counters {
            live: id_reduce.live,
            deleted: id_reduce.deleted,
        };
        match counters {
            Some(c) if c != recount => {
                return Err(Error::Verify(format!(
                    "counters document says {c:?}, recount {recount:?}"
                )))
            }
            None if !ids.is_empty() => {
                return Err(Error::Verify("documents but no counters document".into()))
            }
            _ => {}
        }
        let report = VerifyReport {
            live: id_reduce.live,
            deleted: id_reduce.deleted,
            bytes: id_reduce.bytes,
            by_seq_entries,
            local_docs,
            extent,
        };
        Ok((
            report,
            Contents {
                docs,
                by_seq,
                counters,
                locals,
            },
        ))
    }
}
