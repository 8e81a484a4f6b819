//! The engine on `SimVfs`: crash at every failpoint hit of a flush and
//! compaction workload in turn, in every crash mode, reopen, and check that
//! the data of every acknowledged flush is there (a simple check; the full
//! oracle lives in its own crate). Then the same with a planted bug (the data
//! fsync before the header skipped): some crash point must yield a recovered
//! header whose data is missing, or the suite could not catch it.

use engine::mutants::{self, Mutant};
use engine::{CompactionOptions, Config, ManualClock, Progress, Store};
use failpoints::{CrashMode, CrashTrigger, SimVfs};
use std::collections::BTreeMap;
use std::sync::Arc;

type State = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// What the workload got acknowledged, and the batch in flight when the crash
/// struck (it may or may not have landed).
#[derive(Default)]
struct Acked {
    state: State,
    in_flight: State,
}

fn config() -> Config {
    Config {
        fanout: 3,
        clock: Arc::new(ManualClock::new(100)),
        copy_batch_docs: 3,
        max_unlocked_catchup_rounds: 1,
        ..Config::default()
    }
}

/// Flushes, then a compaction with flushes between its steps, then flushes.
/// Stops at the first error (the crash). Returns what was acknowledged.
fn workload(sim: &SimVfs) -> Acked {
    let mut acked = Acked::default();
    let Ok(store) = Store::open(sim.as_vfs(), "/db", "db", config()) else {
        return acked;
    };
    let mut batch_no = 0u32;
    let mut flush = |store: &Store, acked: &mut Acked| -> bool {
        batch_no += 1;
        let mut batch = State::new();
        for i in 0..4u32 {
            let key = format!("k{:02}", (batch_no * 7 + i * 3) % 20).into_bytes();
            if (batch_no + i).is_multiple_of(5) {
                if store.delete(&key).is_err() {
                    return false;
                }
                batch.insert(key, None);
            } else {
                let value = format!("v{batch_no}.{i}").into_bytes();
                if store.set(&key, &value).is_err() {
                    return false;
                }
                batch.insert(key, Some(value));
            }
        }
        acked.in_flight = batch.clone();
        match store.flush() {
            Ok(_) => {
                acked.state.extend(batch);
                acked.in_flight.clear();
                true
            }
            Err(_) => false,
        }
    };
    for _ in 0..4 {
        if !flush(&store, &mut acked) {
            return acked;
        }
    }
    let Ok(mut c) = store.start_compaction(CompactionOptions::default()) else {
        return acked;
    };
    for _ in 0..50 {
        if !flush(&store, &mut acked) {
            return acked;
        }
        match c.step() {
            Ok(Progress::Done(_)) => break,
            Ok(_) => {}
            Err(_) => return acked,
        }
    }
    for _ in 0..2 {
        if !flush(&store, &mut acked) {
            return acked;
        }
    }
    acked
}

/// Reopen and read every key; Err if the store cannot be opened or read.
fn recovered(sim: &SimVfs) -> Result<State, engine::Error> {
    let store = Store::open(sim.as_vfs(), "/db", "db", config())?;
    store.verify()?;
    let mut out = State::new();
    for doc in store.snapshot()?.all_docs()? {
        out.insert(doc.key, (!doc.deleted).then_some(doc.value));
    }
    Ok(out)
}

/// Every acknowledged key reads as acknowledged, or as the in-flight batch
/// wrote it (which may have landed).
fn check(acked: &Acked, got: &State) -> Result<(), String> {
    for (key, value) in &acked.state {
        let found = got.get(key).cloned().flatten();
        let in_flight = acked.in_flight.get(key).cloned();
        if found != *value && in_flight.is_none_or(|v| v != found) {
            return Err(format!(
                "key {:?}: acknowledged {:?}, found {:?}",
                String::from_utf8_lossy(key),
                value.as_deref().map(String::from_utf8_lossy),
                found.as_deref().map(String::from_utf8_lossy)
            ));
        }
    }
    Ok(())
}

/// How often each failpoint is hit by the workload without a crash.
fn hit_counts() -> BTreeMap<String, u64> {
    let sim = SimVfs::new(0);
    let _bound = failpoints::bind_thread(&sim);
    workload(&sim);
    sim.coverage().hits
}

/// Run the workload crashing at hit `nth` of `name`, reboot in `mode`, and
/// return (acked, what recovery shows).
fn crash_case(
    name: &str,
    nth: u64,
    mode: CrashMode,
    seed: u64,
) -> (Acked, Result<State, engine::Error>) {
    let sim = SimVfs::new(seed);
    let _bound = failpoints::bind_thread(&sim);
    sim.set_crash_mode(Some(mode));
    sim.arm(CrashTrigger::AtFailpoint {
        name: name.to_string(),
        nth,
    })
    .unwrap();
    let acked = workload(&sim);
    assert!(sim.is_crashed(), "{name} hit #{nth} did not crash");
    sim.reboot();
    (acked, recovered(&sim))
}

#[test]
fn every_crash_point_keeps_every_acknowledged_flush() {
    failpoints::install_failpoint_callbacks();
    let counts = hit_counts();
    let flush_and_compaction = engine::failpoints::FLUSH
        .iter()
        .chain(engine::failpoints::COMPACTION)
        .filter(|n| **n != "compact::abort");
    let mut cases = 0;
    for name in flush_and_compaction {
        let hits = counts.get(*name).copied().unwrap_or(0);
        assert!(hits > 0, "the workload never hits {name}");
        for nth in 1..=hits {
            for (m, mode) in CrashMode::ALL.into_iter().enumerate() {
                let seed = nth * 31 + m as u64;
                let (acked, got) = crash_case(name, nth, mode, seed);
                let got =
                    got.unwrap_or_else(|e| panic!("{name} #{nth} {mode}: recovery failed: {e}"));
                if let Err(e) = check(&acked, &got) {
                    panic!("{name} #{nth} {mode} (seed {seed}): {e}");
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 500, "only {cases} crash cases");
}

#[test]
fn a_skipped_data_fsync_is_caught() {
    failpoints::install_failpoint_callbacks();
    let counts = hit_counts();
    mutants::set(Some(Mutant::HeaderBeforeDataSync));
    let mut caught = Vec::new();
    for name in ["flush::after_header", "flush::before_header_sync"] {
        for nth in 1..=counts.get(name).copied().unwrap_or(0) {
            for mode in CrashMode::ALL {
                for seed in 0..8 {
                    let (acked, got) = crash_case(name, nth, mode, seed);
                    let bad = match got {
                        Err(e) => Some(e.to_string()),
                        Ok(state) => check(&acked, &state).err(),
                    };
                    if let Some(why) = bad {
                        caught.push(format!("{name} #{nth} {mode} seed {seed}: {why}"));
                    }
                }
            }
        }
    }
    mutants::set(None);
    assert!(
        !caught.is_empty(),
        "with the data fsync skipped, no crash point lost data: the suite could not catch it"
    );
    // With the bug off, the same crash points are all fine (checked above).
    eprintln!(
        "{} crash cases exposed the planted bug, e.g. {}",
        caught.len(),
        caught[0]
    );
}
