//! Every `compact::*` failpoint of the catalog is hit by a compaction that
//! races flushes (so catch-up has headers to replay) and switches, or by an
//! abort. Needs the `failpoints` feature (on in `cargo test --workspace`;
//! alone: `cargo test -p engine --features failpoints --test compaction_failpoints`).

use engine::failpoints::COMPACTION;
use engine::{CompactionOptions, Config, ManualClock, Progress, StdVfs, Store};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[test]
fn every_compaction_failpoint_is_hit() {
    let scenario = fail::FailScenario::setup();
    let hits: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    for &name in COMPACTION {
        let hits = hits.clone();
        fail::cfg_callback(name, move || {
            *hits.lock().unwrap().entry(name).or_insert(0) += 1
        })
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(10));
    let config = Config {
        fanout: 3,
        clock: clock.clone(),
        copy_batch_docs: 4,
        max_unlocked_catchup_rounds: 2,
        ..Config::default()
    };
    let store = Store::open(Arc::new(StdVfs), dir.path(), "db", config).unwrap();
    for i in 0..30u32 {
        store.set(format!("k{i:02}").as_bytes(), b"v").unwrap();
    }
    store.flush().unwrap();

    // An aborted compaction.
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .unwrap();
    c.step().unwrap();
    c.abort().unwrap();

    // A compaction with flushes between its steps, to the end.
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .unwrap();
    let mut i = 0u32;
    loop {
        i += 1;
        store.set(format!("n{i:03}").as_bytes(), b"w").unwrap();
        clock.advance(1);
        store.flush().unwrap();
        if let Progress::Done(_) = c.step().unwrap() {
            break;
        }
        assert!(i < 1000, "compaction does not finish");
    }
    let hits = hits.lock().unwrap().clone();
    drop(scenario);
    let missed: Vec<&str> = COMPACTION
        .iter()
        .copied()
        .filter(|n| !hits.contains_key(n))
        .collect();
    assert!(missed.is_empty(), "never hit: {missed:?} (hits: {hits:?})");
    assert_eq!(hits["compact::abort"], 1);
    assert_eq!(hits["compact::start"], 2);
    assert_eq!(hits["compact::catchup_locked"], 1);
    assert!(hits["compact::catchup_unlocked"] >= 1);
    assert!(hits["compact::replay_header"] >= 1);
}
