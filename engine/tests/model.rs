//! Property test: the store against a `BTreeMap` model.
//!
//! Thousands of seeded random op sequences on the real file system (one
//! tempdir each): sets (empty, small and block-crossing values), deletes
//! (also of keys never written), re-sets, flushes (also of an empty queue),
//! reopen with the queue dropped (sometimes with another fan-out), and reads
//! checked against the model: `get` (tombstones too), `Snapshot::scan` with
//! every kind of bound, `changes_since`, `changed_docs_since`, `headers()`,
//! `snapshot_at_header` / `snapshot_at_seqno` / `snapshot_at` for older
//! commits, and `verify()` after every reopen. Fan-outs are 2..=5 so that a
//! few dozen keys already make trees several levels deep.
//!
//! Everything comes from one u64 seed per sequence (ChaCha8). A failure
//! prints the seed and the last operations; replay one sequence with
//! `ENGINE_MODEL_SEED=<seed> cargo test -p engine --test model -- --nocapture`.
//! `ENGINE_MODEL_SEQUENCES=<n>` runs n sequences per test function (a soak).

mod common;

use common::{Model, State};
use engine::{Clock, DocInfo, ManualClock, RecoveryPolicy, SeqEntry, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Sequences per test function; four functions run in parallel.
const SEQUENCES_PER_TEST: u64 = 750;

/// One commit of the current file, as the model saw it.
#[derive(Clone, Debug)]
struct Commit {
    pos: u64,
    timestamp: u64,
    state: State,
}

struct Run {
    rng: ChaCha8Rng,
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    fanout: usize,
    key_space: usize,
    store: Option<Store>,
    model: Model,
    /// Every commit of the file, oldest first.
    history: Vec<Commit>,
    /// The last operations, for the failure message.
    log: Vec<String>,
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn eng<T>(what: &str, r: engine::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

impl Run {
    fn new(seed: u64) -> Result<Run, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let fanout = rng.gen_range(2..=5);
        let key_space = [1, 2, 5, 12, 40, 150, 500][rng.gen_range(0..7)];
        let mut run = Run {
            rng,
            dir: common::scratch_dir(),
            clock: Arc::new(ManualClock::new(1_000)),
            fanout,
            key_space,
            store: None,
            model: Model::new(),
            history: Vec::new(),
            log: Vec::new(),
        };
        run.note(format!("start fanout={fanout} key_space={key_space}"));
        run.reopen()?;
        Ok(run)
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn note(&mut self, op: String) {
        self.log.push(op);
    }

    /// Key `i` of the key space. Some keys are long, one is empty, so that
    /// separator keys of every length occur.
    fn key_at(i: usize) -> Vec<u8> {
        if i == 0 {
            return Vec::new();
        }
        match i % 11 {
            3 => format!("long/{i:05}/{}", "x".repeat(i % 90)).into_bytes(),
            _ => format!("k{i}").into_bytes(),
        }
    }

    fn key(&mut self) -> Vec<u8> {
        let i = self.rng.gen_range(0..self.key_space);
        Self::key_at(i)
    }

    fn value(&mut self) -> Vec<u8> {
        let len = match self.rng.gen_range(0..100) {
            0..=4 => 0,
            5..=7 => self.rng.gen_range(4_000..10_000),
            _ => self.rng.gen_range(1..80),
        };
        let mut v = vec![0u8; len];
        self.rng.fill(v.as_mut_slice());
        v
    }

    fn reopen(&mut self) -> Check {
        self.store = None;
        if self.rng.gen_bool(0.3) {
            self.fanout = self.rng.gen_range(2..=5);
        }
        let config = common::config(self.fanout, RecoveryPolicy::Strict, &self.clock);
        let (store, report) = eng(
            "open",
            Store::open_with_report(
                Arc::new(engine::StdVfs),
                self.dir.path(),
                common::NAME,
                config,
            ),
        )?;
        ensure!(
            report.truncated_bytes == 0 && report.damaged_headers.is_empty(),
            "a clean reopen repaired something: {report:?}"
        );
        // Recovery makes the tip durable by appending a copy of its header
        // (a page a crashed process's failed fsync left clean is never
        // written by a later fsync): the same commit, at a new position.
        if let Some(last) = self.history.last_mut() {
            let tip = eng("snapshot", store.snapshot())?.header_pos();
            ensure!(
                tip.is_some_and(|t| t > last.pos),
                "reopen left the tip at {tip:?}, the last commit was at {}",
                last.pos
            );
            last.pos = tip.unwrap_or(last.pos);
        }
        self.store = Some(store);
        self.model.reopened();
        self.check_all()
    }

    fn flush(&mut self) -> Check {
        let before = self.model.update_seq;
        let store = self.store.clone().expect("open");
        let pos = self.model.flush(&store)?;
        if let Some(pos) = pos {
            let timestamp = self
                .clock
                .now_secs()
                .max(self.history.last().map_or(0, |c| c.timestamp));
            ensure!(
                self.model.update_seq > before,
                "update_seq did not rise: {before} -> {}",
                self.model.update_seq
            );
            let state = self.model.state();
            self.history.push(Commit {
                pos,
                timestamp,
                state,
            });
        }
        Ok(())
    }

    /// Everything the store shows equals the model; used after each reopen.
    fn check_all(&mut self) -> Check {
        let want = self.model.state();
        let snap = eng("snapshot", self.store().snapshot())?;
        let got = eng("read", common::read_state(&snap))?;
        ensure!(
            got == want,
            "state after reopen differs:\n got {got:?}\nwant {want:?}"
        );
        let report = eng("verify", self.store().verify())?;
        want.check_report(&report)?;
        let counters = eng("counters", snap.counters())?;
        let (live, deleted) = want.counts();
        match counters {
            None => ensure!(want.update_seq == 0, "no counters document after commits"),
            Some(c) => ensure!(
                (c.live, c.deleted) == (live, deleted),
                "counters {c:?}, model ({live}, {deleted})"
            ),
        }
        self.check_headers()?;
        self.check_changes(0)?;
        eng("verify_all", self.store().verify_all())?;
        Ok(())
    }

    fn check_headers(&self) -> Check {
        let headers = eng("headers", self.store().headers())?;
        ensure!(
            headers.len() == self.history.len(),
            "{} headers, model has {} commits",
            headers.len(),
            self.history.len()
        );
        for (h, c) in headers.iter().zip(self.history.iter().rev()) {
            ensure!(
                h.pos == c.pos
                    && h.header.update_seq == c.state.update_seq
                    && h.header.timestamp == c.timestamp,
                "header {h:?} differs from commit at {} (update_seq {}, ts {})",
                c.pos,
                c.state.update_seq,
                c.timestamp
            );
        }
        Ok(())
    }

    fn check_get(&mut self) -> Check {
        let key = if self.rng.gen_bool(0.9) {
            self.key()
        } else {
            b"never-written".to_vec()
        };
        let got = eng("get", self.store().get(&key))?;
        let want = self.model.docs.get(&key).cloned();
        self.note(format!("get {key:?}"));
        ensure!(got == want, "get {key:?}: got {got:?}, want {want:?}");
        Ok(())
    }

    fn bound(&mut self) -> Bound<Vec<u8>> {
        match self.rng.gen_range(0..5) {
            0 => Bound::Unbounded,
            1 | 2 => Bound::Included(self.key()),
            _ => Bound::Excluded(self.key()),
        }
    }

    fn check_scan(&mut self) -> Check {
        let lo = self.bound();
        let hi = self.bound();
        self.note(format!("scan {lo:?}..{hi:?}"));
        let snap = eng("snapshot", self.store().snapshot())?;
        let got = eng("scan", snap.scan(as_ref(&lo), as_ref(&hi)))?;
        // Filter rather than BTreeMap::range, which panics on lo > hi.
        let want: Vec<DocInfo> = self
            .model
            .docs
            .values()
            .filter(|d| above(&d.key, &lo) && below(&d.key, &hi))
            .cloned()
            .collect();
        ensure!(
            got == want,
            "scan {lo:?}..{hi:?}:\n got {got:?}\nwant {want:?}"
        );
        Ok(())
    }

    fn check_changes(&self, since: u64) -> Check {
        let snap = eng("snapshot", self.store().snapshot())?;
        let mut want_docs: Vec<DocInfo> = self
            .model
            .docs
            .values()
            .filter(|d| d.seqno > since)
            .cloned()
            .collect();
        want_docs.sort_by_key(|d| d.seqno);
        let want: Vec<SeqEntry> = want_docs
            .iter()
            .map(|d| SeqEntry {
                seqno: d.seqno,
                key: d.key.clone(),
                deleted: d.deleted,
            })
            .collect();
        let got = eng("changes_since", snap.changes_since(since))?;
        ensure!(
            got == want,
            "changes_since({since}):\n got {got:?}\nwant {want:?}"
        );
        let got_docs = eng("changed_docs_since", snap.changed_docs_since(since))?;
        ensure!(
            got_docs == want_docs,
            "changed_docs_since({since}):\n got {got_docs:?}\nwant {want_docs:?}"
        );
        Ok(())
    }

    fn check_old_header(&mut self) -> Check {
        if self.history.is_empty() {
            return Ok(());
        }
        let i = self.rng.gen_range(0..self.history.len());
        let commit = self.history[i].clone();
        self.note(format!("snapshot_at_header #{i} @{}", commit.pos));
        let snap = eng(
            "snapshot_at_header",
            self.store().snapshot_at_header(commit.pos),
        )?;
        let got = eng("read old", common::read_state(&snap))?;
        ensure!(
            got == commit.state,
            "snapshot at header #{i} ({}):\n got {got:?}\nwant {:?}",
            commit.pos,
            commit.state
        );
        let report = eng("verify old", snap.verify())?;
        commit.state.check_report(&report)
    }

    fn check_pitr_lookups(&mut self) -> Check {
        let top = self.model.update_seq + 2;
        let seqno = self.rng.gen_range(0..=top);
        let want = self
            .history
            .iter()
            .rev()
            .find(|c| c.state.update_seq <= seqno)
            .map(|c| c.pos);
        let got = eng("snapshot_at_seqno", self.store().snapshot_at_seqno(seqno))?
            .and_then(|s| s.header_pos());
        self.note(format!("snapshot_at_seqno {seqno}"));
        ensure!(
            got == want,
            "snapshot_at_seqno({seqno}) at {got:?}, want {want:?}"
        );

        let now = self.clock.now_secs();
        let ts = self.rng.gen_range(999..=now + 1);
        let want = self
            .history
            .iter()
            .rev()
            .find(|c| c.timestamp <= ts)
            .map(|c| c.pos);
        let got = eng("snapshot_at", self.store().snapshot_at(ts))?.and_then(|s| s.header_pos());
        self.note(format!("snapshot_at {ts}"));
        ensure!(got == want, "snapshot_at({ts}) at {got:?}, want {want:?}");
        Ok(())
    }

    fn step(&mut self) -> Check {
        match self.rng.gen_range(0..100) {
            0..=39 => {
                let (key, value) = (self.key(), self.value());
                self.note(format!("set {key:?} ({} bytes)", value.len()));
                let store = self.store.clone().expect("open");
                self.model.set(&store, &key, &value)
            }
            40..=53 => {
                let key = self.key();
                self.note(format!("delete {key:?}"));
                let store = self.store.clone().expect("open");
                self.model.delete(&store, &key)
            }
            54..=65 => {
                self.note(format!("flush ({} queued)", self.model.pending.len()));
                self.flush()?;
                self.check_headers()
            }
            66..=67 => {
                self.note("flush twice".into());
                self.flush()?;
                self.flush()
            }
            68..=71 => {
                self.note(format!(
                    "reopen ({} queued dropped)",
                    self.model.pending.len()
                ));
                self.reopen()
            }
            72..=79 => self.check_get(),
            80..=85 => self.check_scan(),
            86..=88 => {
                let since = self.rng.gen_range(0..=self.model.update_seq + 1);
                self.note(format!("changes_since {since}"));
                self.check_changes(since)
            }
            89..=92 => self.check_old_header(),
            93..=95 => self.check_pitr_lookups(),
            _ => {
                let secs = self.rng.gen_range(0..3);
                self.note(format!("clock +{secs}"));
                self.clock.advance(secs);
                Ok(())
            }
        }
    }

    fn run(&mut self) -> Check {
        let steps = self.rng.gen_range(8..=80);
        for _ in 0..steps {
            self.step()?;
        }
        self.note("final flush and reopen".into());
        self.flush()?;
        self.reopen()
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
    }
}

fn above(key: &[u8], lo: &Bound<Vec<u8>>) -> bool {
    match lo {
        Bound::Unbounded => true,
        Bound::Included(l) => key >= l.as_slice(),
        Bound::Excluded(l) => key > l.as_slice(),
    }
}

fn below(key: &[u8], hi: &Bound<Vec<u8>>) -> bool {
    match hi {
        Bound::Unbounded => true,
        Bound::Included(h) => key <= h.as_slice(),
        Bound::Excluded(h) => key < h.as_slice(),
    }
}

/// Run one sequence; Err carries the reason and the tail of the op log.
fn run_sequence(seed: u64) -> Check {
    let mut run = Run::new(seed)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| run.run()));
    let failure = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(msg)) => msg,
        Err(panic) => format!("PANIC: {}", panic_message(&panic)),
    };
    let tail = run.log.len().saturating_sub(25);
    Err(format!(
        "{failure}\nlast operations:\n  {}",
        run.log[tail..].join("\n  ")
    ))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".into())
}

fn seed_of(base: u64, case: u64) -> u64 {
    // SplitMix64 step, so neighbouring cases get unrelated seeds.
    let mut z = base.wrapping_add(case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn run_cases(base: u64) {
    if let Ok(s) = std::env::var("ENGINE_MODEL_SEED") {
        // Replay one sequence (in the first test function only).
        if base == BASE_SEEDS[0] {
            let seed = parse_seed(&s);
            if let Err(msg) = run_sequence(seed) {
                panic!("seed {seed:#018x}: {msg}");
            }
        }
        return;
    }
    // ENGINE_MODEL_SEQUENCES=N runs N per test function instead (a soak).
    let count = std::env::var("ENGINE_MODEL_SEQUENCES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SEQUENCES_PER_TEST);
    for case in 0..count {
        let seed = seed_of(base, case);
        if let Err(msg) = run_sequence(seed) {
            panic!(
                "model test failed: case {case}, seed {seed:#018x}: {msg}\n\
                 replay: ENGINE_MODEL_SEED={seed:#x} cargo test -p engine --test model -- --nocapture"
            );
        }
    }
}

fn parse_seed(s: &str) -> u64 {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).expect("hex seed"),
        None => s.parse().expect("decimal seed"),
    }
}

const BASE_SEEDS: [u64; 4] = [
    0xC0FF_EE00_0000_0001,
    0xC0FF_EE00_0000_0002,
    0xC0FF_EE00_0000_0003,
    0xC0FF_EE00_0000_0004,
];

#[test]
fn model_sequences_a() {
    run_cases(BASE_SEEDS[0]);
}

#[test]
fn model_sequences_b() {
    run_cases(BASE_SEEDS[1]);
}

#[test]
fn model_sequences_c() {
    run_cases(BASE_SEEDS[2]);
}

#[test]
fn model_sequences_d() {
    run_cases(BASE_SEEDS[3]);
}

/// Test the tester: with seqnos reused after a reopen (a seeded bug), the
/// model must notice within a few sequences. Runs where the `mutants`
/// feature is on (`cargo test --workspace` unifies it in).
#[cfg(feature = "mutants")]
#[test]
fn model_catches_seqno_reuse_after_reopen() {
    use engine::mutants::{self, Mutant};
    mutants::set(Some(Mutant::SeqnoReused));
    let caught = (0..50).find_map(|case| run_sequence(seed_of(0x5EED, case)).err());
    mutants::set(None);
    let msg = caught.expect("the seeded bug went unnoticed in 50 sequences");
    assert!(
        msg.contains("seqno"),
        "caught, but for another reason: {msg}"
    );
}

/// Regression: `snapshot_at_header` with a position that is not a block
/// start hit a debug assert (a panic in debug builds) instead of returning
/// an error. Found while adding the forged-header probes of `bitflip.rs`.
#[test]
fn snapshot_at_header_rejects_positions_that_are_not_headers() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(1));
    let store = common::open(
        dir.path(),
        common::config(2, RecoveryPolicy::Strict, &clock),
    )
    .unwrap();
    for i in 0..10u8 {
        store.set(&[i], &[i; 50]).unwrap();
    }
    store.flush().unwrap();
    let tip = store.headers().unwrap()[0].pos;
    assert!(store.snapshot_at_header(tip).is_ok());
    for pos in [1, tip - 1, tip + 1, tip + 100] {
        let got = store.snapshot_at_header(pos);
        assert!(
            matches!(got, Err(engine::Error::Invalid(_))),
            "position {pos}: {got:?}"
        );
    }
    // Block starts that hold data, or lie past the end: typed errors too.
    for pos in [0, tip + 4096, u64::MAX - 4095] {
        let got = store.snapshot_at_header(pos);
        assert!(got.is_err(), "position {pos}: {got:?}");
    }
}
