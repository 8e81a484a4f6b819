//! Compaction interleaved with flushes, step by step, against a model.
//!
//! Every case draws a workload and an interleaving from one seed; on failure
//! the seed is printed. Real files (on /dev/shm when there is one, where an
//! fsync is cheap; see `common::scratch_dir`).

mod common;

use engine::{CompactionOptions, Config, ManualClock, PitrConfig, Progress, StdVfs, Store, Vfs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

type Model = BTreeMap<Vec<u8>, (u64, bool, Vec<u8>)>;

fn config(clock: Arc<ManualClock>, fanout: usize, pitr: Option<PitrConfig>) -> Config {
    Config {
        fanout,
        clock,
        pitr,
        copy_batch_docs: 3,
        max_unlocked_catchup_rounds: 2,
        ..Config::default()
    }
}

fn state(store: &Store) -> Model {
    store
        .snapshot()
        .unwrap()
        .all_docs()
        .unwrap()
        .into_iter()
        .map(|d| (d.key, (d.seqno, d.deleted, d.value)))
        .collect()
}

fn snapshot_state(snap: &engine::Snapshot) -> Model {
    snap.all_docs()
        .unwrap()
        .into_iter()
        .map(|d| (d.key, (d.seqno, d.deleted, d.value)))
        .collect()
}

/// Drop tombstones at or below `purge_seq`: what compaction may remove.
fn minus_purged(model: &Model, purge_seq: u64) -> Model {
    model
        .iter()
        .filter(|(_, (seq, deleted, _))| !(*deleted && *seq <= purge_seq))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

struct Case {
    rng: ChaCha8Rng,
    store: Store,
    clock: Arc<ManualClock>,
    pending: Model,
    model: Model,
    /// update_seq -> state, for every commit.
    history: BTreeMap<u64, (u64, Model)>,
}

impl Case {
    fn mutate(&mut self, n: usize) {
        for _ in 0..n {
            let key = format!("k{:02}", self.rng.gen_range(0..40)).into_bytes();
            if self.rng.gen_bool(0.2) {
                let seq = self.store.delete(&key).unwrap();
                self.pending.insert(key, (seq, true, Vec::new()));
            } else {
                let value = format!("v{}", self.rng.gen::<u32>()).into_bytes();
                let seq = self.store.set(&key, &value).unwrap();
                self.pending.insert(key, (seq, false, value));
            }
        }
    }

    fn flush(&mut self) {
        self.clock.advance(self.rng.gen_range(0..4));
        if let Some(info) = self.store.flush().unwrap() {
            self.model.append(&mut self.pending);
            self.history
                .insert(info.update_seq, (info.timestamp, self.model.clone()));
        }
    }
}

fn run_case(seed: u64, pitr: Option<PitrConfig>) {
    let dir = common::scratch_dir();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs);
    let clock = Arc::new(ManualClock::new(100));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let fanout = rng.gen_range(2..6);
    let store = Store::open(
        vfs.clone(),
        dir.path(),
        "db",
        config(clock.clone(), fanout, pitr),
    )
    .unwrap();
    let mut c = Case {
        rng,
        store,
        clock: clock.clone(),
        pending: Model::new(),
        model: Model::new(),
        history: BTreeMap::new(),
    };
    for _ in 0..c.rng.gen_range(1..6) {
        let n = c.rng.gen_range(1..15);
        c.mutate(n);
        c.flush();
    }
    let h0 = c.store.snapshot().unwrap().header().update_seq;
    let purge_upto = c.rng.gen_bool(0.5).then(|| c.rng.gen_range(0..=h0));
    let mut compaction = c
        .store
        .start_compaction(CompactionOptions {
            purge_upto,
            ..CompactionOptions::default()
        })
        .unwrap();
    let started = compaction.started_at_secs();
    let mut steps = 0;
    let report = loop {
        steps += 1;
        assert!(steps < 1000, "seed {seed}: compaction does not finish");
        if c.rng.gen_bool(0.6) {
            let n = c.rng.gen_range(0..6);
            c.mutate(n);
            c.flush();
        }
        match compaction.step().unwrap() {
            Progress::Done(report) => break report,
            Progress::Running(_) => {}
        }
    };
    assert!(report.catchup_rounds <= 3, "seed {seed}: {report:?}");
    // The switch loses nothing: state equals the model minus allowed purges.
    let purge_seq = c.store.snapshot().unwrap().header().purge_seq;
    assert!(
        purge_seq <= purge_upto.unwrap_or(0),
        "seed {seed}: purge_seq {purge_seq}"
    );
    assert_eq!(
        state(&c.store),
        minus_purged(&c.model, purge_seq),
        "seed {seed}"
    );
    c.store.verify_all().unwrap();
    // Every header of the new file equals history at that point.
    let headers = c.store.headers().unwrap();
    for h in &headers {
        let (ts, expected) = &c.history[&h.header.update_seq];
        assert_eq!(h.header.timestamp, *ts, "seed {seed}");
        let snap = c.store.snapshot_at_header(h.pos).unwrap();
        assert_eq!(
            snapshot_state(&snap),
            minus_purged(expected, h.header.purge_seq),
            "seed {seed}: header {}",
            h.header.update_seq
        );
    }
    if let Some(p) = pitr {
        check_pitr_windows(seed, &c, &headers, p, started, report.final_update_seq);
    }
    // Keep going after the switch, then reopen: nothing lost.
    c.mutate(5);
    c.flush();
    let expected = minus_purged(&c.model, purge_seq);
    drop(compaction);
    let store = c.store.clone();
    drop(c.store);
    drop(store);
    let reopened = Store::open(vfs.clone(), dir.path(), "db", config(clock, fanout, pitr)).unwrap();
    assert_eq!(state(&reopened), expected, "seed {seed} after reopen");
    assert_eq!(
        vfs.list(dir.path()).unwrap(),
        vec!["db.couch.2".to_string()]
    );
}

/// One header per window among those compaction wrote; timestamps rise.
fn check_pitr_windows(
    seed: u64,
    c: &Case,
    headers: &[engine::HeaderInfo],
    p: PitrConfig,
    started: u64,
    switch_seq: u64,
) {
    let cutoff = started.saturating_sub(p.max_history_age_secs);
    let all: Vec<(u64, u64)> = c.history.iter().map(|(s, (ts, _))| (*s, *ts)).collect();
    let upto: Vec<(u64, u64)> = all.into_iter().filter(|(s, _)| *s <= switch_seq).collect();
    let base = upto.iter().rposition(|(_, ts)| *ts < cutoff).unwrap_or(0);
    let cand = &upto[base..];
    let mut expected = Vec::new();
    for (i, (seq, ts)) in cand.iter().enumerate() {
        let last =
            i + 1 == cand.len() || cand[i + 1].1 / p.granularity_secs != ts / p.granularity_secs;
        if last {
            expected.push(*seq);
        }
    }
    // Headers the flusher wrote after the switch are not compaction's.
    let mut got: Vec<u64> = headers
        .iter()
        .map(|h| h.header.update_seq)
        .filter(|s| *s <= switch_seq)
        .collect();
    got.reverse();
    assert_eq!(got, expected, "seed {seed}: PiTR headers");
}

#[test]
fn compaction_interleaved_with_flushes_loses_nothing() {
    for seed in 0..400 {
        run_case(seed, None);
    }
}

#[test]
fn pitr_compaction_keeps_one_header_per_window() {
    for seed in 0..400 {
        let pitr = PitrConfig {
            granularity_secs: 1 + seed % 5,
            max_history_age_secs: seed % 13,
        };
        run_case(1_000_000 + seed, Some(pitr));
    }
}

#[test]
fn second_compaction_is_refused_and_abort_removes_compact_file() {
    let dir = common::scratch_dir();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs);
    let clock = Arc::new(ManualClock::new(1));
    let store = Store::open(vfs.clone(), dir.path(), "db", config(clock, 3, None)).unwrap();
    for i in 0..20u8 {
        store.set(&[i], &[i]).unwrap();
    }
    store.flush().unwrap();
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .unwrap();
    assert!(matches!(
        store.start_compaction(CompactionOptions::default()),
        Err(engine::Error::CompactionRunning)
    ));
    c.step().unwrap();
    assert!(vfs
        .list(dir.path())
        .unwrap()
        .contains(&"db.couch.2.compact".to_string()));
    c.abort().unwrap();
    assert_eq!(
        vfs.list(dir.path()).unwrap(),
        vec!["db.couch.1".to_string()]
    );
    store.set(b"x", b"y").unwrap();
    store.flush().unwrap();
    let report = store
        .start_compaction(CompactionOptions::default())
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(report.new_rev, 2);
    assert_eq!(store.get(b"x").unwrap().unwrap().value, b"y");
}

/// An abort after any number of steps (flushes in between) removes the
/// `.compact` file, and the old file stays authoritative: a reopen shows
/// exactly the flushed state.
#[test]
fn abort_at_every_step_leaves_the_old_file_authoritative() {
    for abort_after in 0..25 {
        let dir = common::scratch_dir();
        let vfs: Arc<dyn Vfs> = Arc::new(StdVfs);
        let clock = Arc::new(ManualClock::new(1));
        let cfg = config(clock.clone(), 3, None);
        let store = Store::open(vfs.clone(), dir.path(), "db", cfg.clone()).unwrap();
        let mut c = Case {
            rng: ChaCha8Rng::seed_from_u64(abort_after),
            store: store.clone(),
            clock,
            pending: Model::new(),
            model: Model::new(),
            history: BTreeMap::new(),
        };
        c.mutate(30);
        c.flush();
        let mut compaction = store
            .start_compaction(CompactionOptions::default())
            .unwrap();
        let mut switched = false;
        for _ in 0..abort_after {
            c.mutate(3);
            c.flush();
            match compaction.step().unwrap() {
                Progress::Running(engine::Phase::Copy | engine::Phase::CatchUp) => {}
                _ => {
                    switched = true;
                    break;
                }
            }
        }
        if switched {
            // Too late to abort: the switch happened; abort must say so.
            assert!(compaction.abort().is_err(), "abort after {abort_after}");
            continue;
        }
        compaction.abort().unwrap();
        assert_eq!(
            vfs.list(dir.path()).unwrap(),
            vec!["db.couch.1".to_string()],
            "abort after {abort_after}"
        );
        c.mutate(2);
        c.flush();
        let expected = c.model.clone();
        drop(c);
        drop(store);
        let reopened = Store::open(vfs, dir.path(), "db", cfg).unwrap();
        assert_eq!(state(&reopened), expected, "abort after {abort_after}");
    }
}
