//! Helpers shared by the engine's integration tests: a tiny reference model
//! of committed state (a `BTreeMap`), reading a snapshot back as the same
//! shape, and opening stores on the real file system.
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use engine::{
    Config, DocInfo, Error, ManualClock, RecoveryPolicy, Snapshot, StdVfs, Store, VerifyReport,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The store name every test uses.
pub const NAME: &str = "db";

/// The file of revision 1 of [`NAME`] in `dir`.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(engine::layout::file_name(NAME, 1))
}

/// A fresh directory for a store. On Linux it lives in `/dev/shm` (tmpfs)
/// when that exists: the tests that open thousands of damaged copies of a
/// file pay for an fsync of every recovery's truncation, which costs ~0.2 ms
/// on a disk and nothing on tmpfs. It is still the real `StdVfs` and real
/// files; only durability across a power cut (which no test here checks)
/// differs. `ENGINE_TEST_TMPDIR=disk` forces the system temp directory.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let disk = std::env::var("ENGINE_TEST_TMPDIR").is_ok_and(|v| v == "disk");
    let builder = tempfile::Builder::new().prefix("engine-test-").clone();
    if !disk && shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("create a temp dir")
}

/// A config with a manual clock, so timestamps are deterministic.
pub fn config(fanout: usize, recovery: RecoveryPolicy, clock: &Arc<ManualClock>) -> Config {
    Config {
        fanout,
        recovery,
        clock: clock.clone(),
        ..Config::default()
    }
}

/// Open store [`NAME`] in `dir` on the real file system.
pub fn open(dir: &Path, config: Config) -> engine::Result<Store> {
    Store::open(Arc::new(StdVfs), dir, NAME, config)
}

/// What one committed header shows a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The header's update_seq.
    pub update_seq: u64,
    /// Every document in key order, tombstones included.
    pub docs: Vec<DocInfo>,
}

impl State {
    /// The state of a store that never committed.
    pub fn empty() -> State {
        State {
            update_seq: 0,
            docs: Vec::new(),
        }
    }

    /// Live documents and tombstones, as `verify` counts them.
    pub fn counts(&self) -> (u64, u64) {
        let deleted = self.docs.iter().filter(|d| d.deleted).count() as u64;
        (self.docs.len() as u64 - deleted, deleted)
    }

    /// Check a verify report against this state.
    pub fn check_report(&self, report: &VerifyReport) -> Result<(), String> {
        let (live, deleted) = self.counts();
        let bytes: u64 = self.docs.iter().map(|d| d.value.len() as u64).sum();
        let want = (live, deleted, bytes, self.docs.len() as u64);
        let got = (
            report.live,
            report.deleted,
            report.bytes,
            report.by_seq_entries,
        );
        if want != got {
            return Err(format!(
                "verify counted (live, deleted, bytes, by_seq) {got:?}, model {want:?}"
            ));
        }
        Ok(())
    }
}

/// Read everything a snapshot shows: update_seq and all documents.
pub fn read_state(snap: &Snapshot) -> engine::Result<State> {
    Ok(State {
        update_seq: snap.header().update_seq,
        docs: snap.all_docs()?,
    })
}

/// A reference model of the store: committed documents, the queue, seqnos.
/// It knows nothing of the engine's internals, only its documented API.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Committed documents by key (tombstones included).
    pub docs: BTreeMap<Vec<u8>, DocInfo>,
    /// update_seq of the newest commit.
    pub update_seq: u64,
    /// Queued, not yet flushed.
    pub pending: Vec<DocInfo>,
    /// The seqno the next mutation gets.
    pub next_seqno: u64,
}

impl Model {
    /// An empty store.
    pub fn new() -> Model {
        Model {
            next_seqno: 1,
            ..Model::default()
        }
    }

    /// The committed state.
    pub fn state(&self) -> State {
        State {
            update_seq: self.update_seq,
            docs: self.docs.values().cloned().collect(),
        }
    }

    fn queue(
        &mut self,
        key: &[u8],
        value: &[u8],
        deleted: bool,
        got_seqno: u64,
    ) -> Result<(), String> {
        if got_seqno != self.next_seqno {
            return Err(format!(
                "mutation of {key:?} got seqno {got_seqno}, model expects {}",
                self.next_seqno
            ));
        }
        self.pending.push(DocInfo {
            key: key.to_vec(),
            seqno: got_seqno,
            deleted,
            value: value.to_vec(),
        });
        self.next_seqno += 1;
        Ok(())
    }

    /// Queue a set on both the store and the model.
    pub fn set(&mut self, store: &Store, key: &[u8], value: &[u8]) -> Result<(), String> {
        let seqno = store.set(key, value).map_err(|e| format!("set: {e}"))?;
        self.queue(key, value, false, seqno)
    }

    /// Queue a delete on both the store and the model.
    pub fn delete(&mut self, store: &Store, key: &[u8]) -> Result<(), String> {
        let seqno = store.delete(key).map_err(|e| format!("delete: {e}"))?;
        self.queue(key, &[], true, seqno)
    }

    /// Flush both; returns the new header's offset (None for an empty queue).
    pub fn flush(&mut self, store: &Store) -> Result<Option<u64>, String> {
        let info = store.flush().map_err(|e| format!("flush: {e}"))?;
        let batch = std::mem::take(&mut self.pending);
        match (info, batch.is_empty()) {
            (None, true) => Ok(None),
            (None, false) => Err(format!(
                "flush of {} mutations committed nothing",
                batch.len()
            )),
            (Some(info), true) => Err(format!("flush of an empty queue committed {info:?}")),
            (Some(info), false) => {
                let last = batch.last().map(|d| d.seqno).unwrap_or_default();
                if info.update_seq != last || info.mutations != batch.len() {
                    return Err(format!(
                        "flush committed {info:?}; model expects update_seq {last}, {} mutations",
                        batch.len()
                    ));
                }
                for d in batch {
                    self.docs.insert(d.key.clone(), d);
                }
                self.update_seq = last;
                Ok(Some(info.header_pos))
            }
        }
    }

    /// The store was dropped and reopened: the queue is gone, and seqnos
    /// continue after the last commit.
    pub fn reopened(&mut self) {
        self.pending.clear();
        self.next_seqno = self.update_seq + 1;
    }
}

/// Whether an error is one of the engine's typed corruption / I/O errors
/// (anything but a panic is acceptable after damage; this just documents
/// which variants we expect to see).
pub fn is_expected_damage_error(e: &Error) -> bool {
    e.is_corruption() || matches!(e, Error::Verify(_) | Error::Io { .. })
}
