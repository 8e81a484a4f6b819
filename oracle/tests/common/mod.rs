//! Hand-built histories: a script drives the model and, beside it, keeps
//! the headers a correct engine would write, computed on its own (a plain
//! map per flush), so tests can show the checker right and wrong stores.
#![allow(dead_code)] // each test file uses its own part of the helpers

use oracle::{
    BySeqEntry, CompactionParams, Counters, Doc, Locals, Model, Pitr, RecoveredHeader,
    RecoveredStore, State,
};

pub fn key(k: &str) -> Vec<u8> {
    k.as_bytes().to_vec()
}

/// A header as a correct engine shows `docs`: by-seq and counters derived.
pub fn derived(
    update_seq: u64,
    purge_seq: u64,
    timestamp_secs: u64,
    docs: State,
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
    let deleted = docs.values().filter(|d| d.deleted).count() as u64;
    let counters = Counters {
        live: docs.len() as u64 - deleted,
        deleted,
    };
    RecoveredHeader {
        update_seq,
        purge_seq,
        timestamp_secs,
        docs,
        by_seq,
        counters,
        locals: Locals::new(),
    }
}

/// The same header with its local documents changed.
pub fn edit_locals(header: &RecoveredHeader, change: impl FnOnce(&mut Locals)) -> RecoveredHeader {
    let mut header = header.clone();
    change(&mut header.locals);
    header
}

/// The same header with its documents changed, by-seq and counters
/// re-derived so that only the state is wrong.
pub fn edit(header: &RecoveredHeader, change: impl FnOnce(&mut State)) -> RecoveredHeader {
    let mut docs = header.docs.clone();
    change(&mut docs);
    RecoveredHeader {
        locals: header.locals.clone(),
        ..derived(
            header.update_seq,
            header.purge_seq,
            header.timestamp_secs,
            docs,
        )
    }
}

/// The header after a compaction purged every tombstone up to `purge_seq`.
pub fn purged(header: &RecoveredHeader, purge_seq: u64) -> RecoveredHeader {
    let mut docs = header.docs.clone();
    docs.retain(|_, doc| !(doc.deleted && doc.seqno <= purge_seq));
    RecoveredHeader {
        locals: header.locals.clone(),
        ..derived(header.update_seq, purge_seq, header.timestamp_secs, docs)
    }
}

/// A store whose file holds `headers`, given oldest first.
pub fn store(oldest_first: &[&RecoveredHeader]) -> RecoveredStore {
    RecoveredStore {
        headers: oldest_first.iter().rev().map(|h| (*h).clone()).collect(),
        files: None,
    }
}

/// The same store with a directory listing.
pub fn with_files(mut store: RecoveredStore, files: &[&str]) -> RecoveredStore {
    store.files = Some(files.iter().map(|f| f.to_string()).collect());
    store
}

/// Drives a model and computes, independently, what a correct engine's
/// headers hold.
pub struct Script {
    pub model: Model,
    state: State,
    locals: Locals,
    queue: Vec<(Vec<u8>, Doc)>,
    local_queue: Vec<(Vec<u8>, Option<Vec<u8>>, u64)>,
    next_seqno: u64,
    /// Every committed header, by update_seq (acknowledged or in flight).
    pub committed: Vec<RecoveredHeader>,
}

impl Script {
    pub fn new() -> Script {
        Script {
            model: Model::new(),
            state: State::new(),
            locals: Locals::new(),
            queue: Vec::new(),
            local_queue: Vec::new(),
            next_seqno: 1,
            committed: Vec::new(),
        }
    }

    pub fn set(&mut self, k: &str, v: &str) -> u64 {
        let seqno = self.model.set(k.as_bytes(), v.as_bytes());
        assert_eq!(
            seqno, self.next_seqno,
            "script and model disagree on seqnos"
        );
        self.queue.push((key(k), Doc::live(v.as_bytes(), seqno)));
        self.next_seqno += 1;
        seqno
    }

    pub fn delete(&mut self, k: &str) -> u64 {
        let seqno = self.model.delete(k.as_bytes());
        assert_eq!(
            seqno, self.next_seqno,
            "script and model disagree on seqnos"
        );
        self.queue.push((key(k), Doc::tombstone(seqno)));
        self.next_seqno += 1;
        seqno
    }

    /// A local document set (`Some`) or removed (`None`).
    pub fn local(&mut self, name: &str, value: Option<&str>) -> u64 {
        let seqno = match value {
            Some(v) => self.model.set_local(name.as_bytes(), v.as_bytes()),
            None => self.model.delete_local(name.as_bytes()),
        };
        assert_eq!(
            seqno, self.next_seqno,
            "script and model disagree on seqnos"
        );
        self.local_queue.push((key(name), value.map(key), seqno));
        self.next_seqno += 1;
        seqno
    }

    /// flush_started only: returns the header the flush writes.
    pub fn start_flush(&mut self, timestamp_secs: u64) -> RecoveredHeader {
        self.model.flush_started(timestamp_secs);
        let update_seq = self
            .queue
            .iter()
            .map(|(_, doc)| doc.seqno)
            .chain(self.local_queue.iter().map(|(_, _, seqno)| *seqno))
            .max()
            .expect("a non-empty queue");
        for (key, doc) in self.queue.drain(..) {
            self.state.insert(key, doc);
        }
        for (name, value, _) in self.local_queue.drain(..) {
            match value {
                Some(value) => self.locals.insert(name, value),
                None => self.locals.remove(&name),
            };
        }
        let mut header = derived(update_seq, 0, timestamp_secs, self.state.clone());
        header.locals = self.locals.clone();
        self.committed.push(header.clone());
        header
    }

    /// A flush that is acknowledged.
    pub fn flush(&mut self, timestamp_secs: u64) -> RecoveredHeader {
        let header = self.start_flush(timestamp_secs);
        self.model
            .flush_acked(header.update_seq, timestamp_secs)
            .expect("a correct acknowledgement");
        header
    }

    /// How many mutations wait for a flush.
    pub fn queued(&self) -> usize {
        self.queue.len() + self.local_queue.len()
    }

    /// The committed header at `update_seq`.
    pub fn at(&self, update_seq: u64) -> RecoveredHeader {
        self.committed
            .iter()
            .find(|h| h.update_seq == update_seq)
            .cloned()
            .unwrap_or_else(|| panic!("no commit at {update_seq}"))
    }

    /// A store whose file holds the commits at these update_seqs (oldest
    /// first), with purge_seq 0.
    pub fn file(&self, update_seqs: &[u64]) -> RecoveredStore {
        let headers: Vec<RecoveredHeader> = update_seqs.iter().map(|&s| self.at(s)).collect();
        store(&headers.iter().collect::<Vec<_>>())
    }

    /// Forget the queue (after a crash the harness reports to the model).
    pub fn crash(&mut self) {
        self.model.crash();
        self.queue.clear();
        self.local_queue.clear();
    }

    /// After a check adopted the commit at `update_seq`: the script's state
    /// and seqnos follow.
    pub fn recovered_at(&mut self, update_seq: u64) {
        self.committed.retain(|h| h.update_seq <= update_seq);
        (self.state, self.locals) = match update_seq {
            0 => (State::new(), Locals::new()),
            _ => {
                let header = self.at(update_seq);
                (header.docs, header.locals)
            }
        };
        self.next_seqno = update_seq + 1;
    }
}

/// u2 = {a:1@1, b:1@2} at t10; u4 = {a:tombstone@3, b:1@2, c:1@4} at t20.
pub fn basic() -> Script {
    let mut s = Script::new();
    s.set("a", "1");
    s.set("b", "1");
    s.flush(10);
    s.delete("a");
    s.set("c", "1");
    s.flush(20);
    s
}

pub fn compaction(purge_upto: Option<u64>, pitr: Option<Pitr>, now_secs: u64) -> CompactionParams {
    CompactionParams {
        purge_upto,
        pitr,
        now_secs,
    }
}

/// Flushes at t5..t52 (u1..u7, one key each), PiTR granularity 10 s, max
/// age 100 s, now 130: the cutoff is 30, base is u4 (t25, window 2), then
/// u5 (t33) and u6 (t37) share window 3 and u6 wins, u7 (t52) alone in 5.
pub fn pitr_history() -> Script {
    let mut s = Script::new();
    for (index, timestamp) in [5, 12, 18, 25, 33, 37, 52].into_iter().enumerate() {
        s.set(&format!("k{index}"), "v");
        s.flush(timestamp);
    }
    s.model.compaction_started(CompactionParams {
        purge_upto: None,
        pitr: Some(Pitr {
            granularity_secs: 10,
            max_age_secs: 100,
        }),
        now_secs: 130,
    });
    s
}
