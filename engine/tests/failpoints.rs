//! Every `flush::*` and `recovery::*` failpoint of the catalog is hit by some
//! flush or recovery, and the flush points are hit in catalog order.
//!
//! Needs the engine's `failpoints` feature (`required-features` in
//! Cargo.toml). `cargo test --workspace` has it: the `failpoints` crate
//! depends on the engine with it, and features unify. `cargo test -p engine`
//! alone skips this binary; run it with
//! `cargo test -p engine --features failpoints --test failpoints`.
//! The compaction points are covered by the compaction tests.
//!
//! The `fail` registry is global: every test holds a `FailScenario`, which
//! serialises them and clears the registry when dropped.

mod common;

use engine::failpoints::{FLUSH, RECOVERY};
use engine::{ManualClock, RecoveryPolicy, Store};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Failpoint names in the order they were hit.
type Hits = Arc<Mutex<Vec<&'static str>>>;

/// Count hits of every flush and recovery point.
fn record(names: impl IntoIterator<Item = &'static str>) -> Hits {
    let hits: Hits = Arc::default();
    for name in names {
        let hits = hits.clone();
        fail::cfg_callback(name, move || hits.lock().unwrap().push(name)).unwrap();
    }
    hits
}

fn taken(hits: &Hits) -> Vec<&'static str> {
    std::mem::take(&mut *hits.lock().unwrap())
}

fn open(dir: &Path) -> (Store, engine::OpenReport) {
    let clock = Arc::new(ManualClock::new(1));
    Store::open_with_report(
        Arc::new(engine::StdVfs),
        dir,
        common::NAME,
        common::config(3, RecoveryPolicy::default(), &clock),
    )
    .unwrap()
}

/// A flush workload, a recovery of a damaged tail, and an open that removes
/// a stale lower revision and a `.compact` leftover.
fn exercise(dir: &Path) {
    let (store, _) = open(dir);
    for i in 0..20u32 {
        store.set(format!("k{i}").as_bytes(), b"value").unwrap();
    }
    store.flush().unwrap().expect("a commit");
    store.delete(b"k3").unwrap();
    store.flush().unwrap().expect("a commit");
    let want = store.snapshot().unwrap().all_docs().unwrap();
    let old_tip = store.snapshot().unwrap().header_pos().unwrap();
    drop(store);

    // A torn commit: a data tail after the last header.
    let path = common::db_path(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let good_len = bytes.len() as u64;
    bytes.extend_from_slice(&[0x5a; 700]);
    std::fs::write(&path, &bytes).unwrap();
    let (store, report) = open(dir);
    assert_eq!(report.truncated_bytes, 700);
    // Cut back to the header, which recovery then appends again in the
    // next block (it makes its choice durable by writing it afresh).
    let copy_pos = good_len.div_ceil(4096) * 4096;
    assert_eq!(store.snapshot().unwrap().header_pos(), Some(copy_pos));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        copy_pos + (good_len - old_tip)
    );
    assert_eq!(store.snapshot().unwrap().all_docs().unwrap(), want);
    drop(store);

    // Revision 2 complete, revision 1 stale, revision 3 an unfinished compaction.
    let rev2 = dir.join(engine::layout::file_name(common::NAME, 2));
    let compact = dir.join(engine::layout::compact_file_name(common::NAME, 3));
    std::fs::copy(&path, &rev2).unwrap();
    std::fs::write(&compact, b"half a compaction").unwrap();
    let (store, report) = open(dir);
    assert_eq!(report.rev, 2);
    assert_eq!(report.removed.len(), 2, "{report:?}");
    assert!(!path.exists() && !compact.exists());
    assert_eq!(store.snapshot().unwrap().all_docs().unwrap(), want);
}

fn assert_hit(name: &'static str) {
    let scenario = fail::FailScenario::setup();
    let hits = record(FLUSH.iter().chain(RECOVERY).copied());
    let dir = common::scratch_dir();
    exercise(dir.path());
    let hits = taken(&hits);
    scenario.teardown();
    let count = hits.iter().filter(|h| **h == name).count();
    assert!(count > 0, "failpoint {name} was never hit; hits: {hits:?}");
}

macro_rules! hit_tests {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                assert_hit($name);
            }
        )*
        /// The names the tests above cover.
        const COVERED: &[&str] = &[$($name),*];
    };
}

hit_tests! {
    flush_before_bodies => "flush::before_bodies",
    flush_after_bodies => "flush::after_bodies",
    flush_before_data_sync => "flush::before_data_sync",
    flush_after_data_sync => "flush::after_data_sync",
    flush_before_header => "flush::before_header",
    flush_after_header => "flush::after_header",
    flush_before_header_sync => "flush::before_header_sync",
    flush_after_header_sync => "flush::after_header_sync",
    recovery_before_cleanup => "recovery::before_cleanup",
    recovery_after_cleanup => "recovery::after_cleanup",
    recovery_before_truncate => "recovery::before_truncate",
    recovery_after_truncate => "recovery::after_truncate",
}

#[test]
fn every_flush_and_recovery_point_has_a_test() {
    let mut catalog: Vec<&str> = FLUSH.iter().chain(RECOVERY).copied().collect();
    let mut covered = COVERED.to_vec();
    catalog.sort_unstable();
    covered.sort_unstable();
    assert_eq!(catalog, covered, "add a hit test for each new catalog name");
}

#[test]
fn failpoints_are_compiled_in() {
    assert!(
        fail::has_failpoints(),
        "this binary needs the engine's `failpoints` feature"
    );
}

#[test]
fn a_flush_hits_the_flush_points_once_each_in_catalog_order() {
    let scenario = fail::FailScenario::setup();
    let hits = record(FLUSH.iter().chain(RECOVERY).copied());
    let dir = common::scratch_dir();
    let (store, _) = open(dir.path());
    assert_eq!(
        taken(&hits),
        Vec::<&str>::new(),
        "a fresh open recovers nothing"
    );
    store.flush().unwrap();
    assert_eq!(
        taken(&hits),
        Vec::<&str>::new(),
        "an empty flush commits nothing"
    );
    store.set(b"a", b"1").unwrap();
    store.flush().unwrap();
    assert_eq!(taken(&hits), FLUSH.to_vec());
    drop(store);
    let _reopened = open(dir.path());
    assert_eq!(
        taken(&hits),
        Vec::<&str>::new(),
        "a clean reopen repairs nothing"
    );
    scenario.teardown();
}
