//! Plain data the harness hands to the model. No engine type appears here:
//! the harness extracts these values from the store it reopened.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key -> newest version map of one header, as by-id lists it.
pub type State = BTreeMap<Vec<u8>, Doc>;

/// The user local documents of one header, name -> value (the store's own
/// counters document is not among them: [`RecoveredHeader::counters`]).
pub type Locals = BTreeMap<Vec<u8>, Vec<u8>>;

/// The newest version of one key in one header.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Doc {
    /// The body; empty for a tombstone.
    pub value: Vec<u8>,
    /// The seqno the mutation got when it was queued.
    pub seqno: u64,
    /// True for a tombstone.
    pub deleted: bool,
}

impl Doc {
    /// A live document.
    pub fn live(value: impl Into<Vec<u8>>, seqno: u64) -> Doc {
        Doc {
            value: value.into(),
            seqno,
            deleted: false,
        }
    }

    /// A tombstone: what a delete writes, whether or not the key existed.
    pub fn tombstone(seqno: u64) -> Doc {
        Doc {
            value: Vec::new(),
            seqno,
            deleted: true,
        }
    }
}

/// The counters the engine keeps in a local document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Documents that are not tombstones.
    pub live: u64,
    /// Tombstones present in the header.
    pub deleted: u64,
}

impl Counters {
    /// What the counters of a header holding `state` must say.
    pub fn recount(state: &State) -> Counters {
        let deleted = state.values().filter(|doc| doc.deleted).count() as u64;
        Counters {
            live: state.len() as u64 - deleted,
            deleted,
        }
    }
}

/// One entry of a header's by-seq listing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BySeqEntry {
    pub seqno: u64,
    pub key: Vec<u8>,
    pub deleted: bool,
}

/// One header of the reopened store and everything readable through it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredHeader {
    pub update_seq: u64,
    pub purge_seq: u64,
    pub timestamp_secs: u64,
    /// The by-id tree: key -> newest version, tombstones included.
    pub docs: State,
    /// The by-seq tree in the order it lists, which must be rising seqno.
    pub by_seq: Vec<BySeqEntry>,
    /// The counters local document.
    pub counters: Counters,
    /// Every other local document.
    #[serde(default)]
    pub locals: Locals,
}

impl RecoveredHeader {
    /// SHA-256 (hex) of a canonical encoding of every field: equal digests,
    /// equal headers. A divergence carries the digests of both sides.
    pub fn sha256(&self) -> String {
        digest_header(self)
    }

    /// A header whose by-seq listing and counters are derived from `docs`:
    /// what a correct engine shows. For expected values inside the oracle
    /// only; a harness that built its input this way would make the
    /// index-agreement and counters checks prove nothing.
    pub(crate) fn consistent(
        update_seq: u64,
        purge_seq: u64,
        timestamp_secs: u64,
        docs: State,
        locals: Locals,
    ) -> RecoveredHeader {
        let mut by_seq: Vec<BySeqEntry> = docs
            .iter()
            .map(|(key, doc)| BySeqEntry {
                seqno: doc.seqno,
                key: key.clone(),
                deleted: doc.deleted,
            })
            .collect();
        by_seq.sort_by_key(|entry| entry.seqno);
        let counters = Counters::recount(&docs);
        RecoveredHeader {
            update_seq,
            purge_seq,
            timestamp_secs,
            docs,
            by_seq,
            counters,
            locals,
        }
    }
}

/// Everything the model needs of a reopened (or running) store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredStore {
    /// Every header recovery can find in the authoritative file, newest
    /// first. Empty when the file holds no header (a fresh store).
    pub headers: Vec<RecoveredHeader>,
    /// The names in the store's directory after open, when the harness lists
    /// them; `None` skips the single-authority check. Authoritative files are
    /// named `<name>.couch.<rev>`, compaction outputs end in `.compact`.
    pub files: Option<Vec<String>>,
}

/// Point-in-time recovery settings of one compaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pitr {
    /// Width of a window; at most one header per window survives. Not zero.
    pub granularity_secs: u64,
    /// History older than `now_secs - max_age_secs` is dropped, except the
    /// newest header before that cutoff.
    pub max_age_secs: u64,
}

/// What a compaction was asked to do, as the harness passed it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionParams {
    /// Tombstones with seqno at most this may be dropped (clamped to the
    /// tip's update_seq at the start). `None`: purge nothing.
    pub purge_upto: Option<u64>,
    /// `None`: PiTR off, the new file keeps no history.
    pub pitr: Option<Pitr>,
    /// The logical clock at the start, in the unit of header timestamps.
    pub now_secs: u64,
}

/// SHA-256 over a canonical encoding of every field of a header view.
fn digest_header(header: &RecoveredHeader) -> String {
    fn bytes(hasher: &mut Sha256, value: &[u8]) {
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    }
    let mut hasher = Sha256::new();
    hasher.update(b"crashfuzz-oracle-header-v1");
    for field in [header.update_seq, header.purge_seq, header.timestamp_secs] {
        hasher.update(field.to_le_bytes());
    }
    hasher.update((header.docs.len() as u64).to_le_bytes());
    for (key, doc) in &header.docs {
        bytes(&mut hasher, key);
        hasher.update(doc.seqno.to_le_bytes());
        hasher.update([u8::from(doc.deleted)]);
        bytes(&mut hasher, &doc.value);
    }
    hasher.update((header.by_seq.len() as u64).to_le_bytes());
    for entry in &header.by_seq {
        hasher.update(entry.seqno.to_le_bytes());
        bytes(&mut hasher, &entry.key);
        hasher.update([u8::from(entry.deleted)]);
    }
    hasher.update(header.counters.live.to_le_bytes());
    hasher.update(header.counters.deleted.to_le_bytes());
    // Only when there are any, so digests of headers without local
    // documents stay what they were before local documents existed.
    if !header.locals.is_empty() {
        hasher.update((header.locals.len() as u64).to_le_bytes());
        for (name, value) in &header.locals {
            bytes(&mut hasher, name);
            bytes(&mut hasher, value);
        }
    }
    hex::encode(hasher.finalize())
}
