//! Windows semantics (issue 11): with the simulated disk's Windows mode on,
//! renaming or unlinking a file that has an open handle fails with "device
//! or resource busy". The compaction switch must never do that: it closes
//! its own handles (the new file's writer, the old file's reader) before
//! the rename, and when a *reader's* snapshot still holds the old file, it
//! defers the unlink and retries it later, as kv_engine's pending deletions
//! do. Both are tested here, step by step and with the background threads,
//! and every run ends with a crash and the oracle's check.

mod threads_support;

use engine::{BackgroundConfig, CompactionOptions, Config, ManualClock, Store};
use failpoints::{FaultConfig, SimVfs};
use harness::runner::{DB_DIR, DB_NAME};
use oracle::Model;
use std::path::Path;
use std::sync::Arc;
use threads_support::Journal;

fn windows_disk(seed: u64) -> SimVfs {
    SimVfs::with_faults(
        seed,
        FaultConfig {
            windows_mode: true,
            ..FaultConfig::default()
        },
    )
}

fn config() -> Config {
    Config {
        fanout: 4,
        clock: Arc::new(ManualClock::new(1_000)),
        copy_batch_docs: 3,
        max_unlocked_catchup_rounds: 2,
        ..Config::default()
    }
}

fn files(sim: &SimVfs) -> Vec<String> {
    use engine::Vfs;
    sim.list(Path::new(DB_DIR)).expect("list")
}

/// Open, and commit `n` keys in `n / 4` flushes, feeding the model.
fn populated(sim: &SimVfs, n: u32) -> (Store, Model) {
    let store = Store::open(sim.as_vfs(), DB_DIR, DB_NAME, config()).expect("open");
    let mut model = Model::new();
    for i in 0..n {
        let (k, v) = (format!("k{:02}", i % 11), format!("v{i}"));
        store.set(k.as_bytes(), v.as_bytes()).expect("set");
        model.set(k.as_bytes(), v.as_bytes());
        if i % 4 == 3 || i + 1 == n {
            model.flush_started(1_000);
            let info = store.flush().expect("flush").expect("a commit");
            model
                .flush_acked(info.update_seq, info.timestamp)
                .expect("acked header as predicted");
        }
    }
    (store, model)
}

fn compact(store: &Store, model: &mut Model) -> engine::CompactionReport {
    let c = store
        .start_compaction(CompactionOptions::default())
        .expect("start");
    model.compaction_started(oracle::CompactionParams {
        purge_upto: c.purge_upto(),
        pitr: None,
        now_secs: c.started_at_secs(),
    });
    let report = c.run().expect("a compaction in Windows mode must not fail");
    model.compaction_switched();
    report
}

fn crash_and_check(model: &mut Model, store: Store, sim: &SimVfs) -> Store {
    let live = harness::runner::extract(&store, sim, false).expect("extract");
    model.check_live(&live).expect("live check");
    sim.crash();
    drop(store);
    sim.reboot();
    model.crash();
    let store = Store::open(sim.as_vfs(), DB_DIR, DB_NAME, config()).expect("reopen");
    let recovered = harness::runner::extract(&store, sim, true).expect("extract");
    if let Err(d) = model.check(&recovered) {
        panic!("{d}");
    }
    store
}

/// Close first: with no reader, the switch closes the compactor's own
/// handles on both files, so the rename and the unlink go through at once.
#[test]
fn the_switch_closes_its_own_handles_before_rename_and_unlink() {
    let sim = windows_disk(1);
    let (store, mut model) = populated(&sim, 20);
    let report = compact(&store, &mut model);
    assert!(!report.unlink_deferred, "{report:?}");
    assert_eq!(files(&sim), vec!["db.couch.2".to_string()]);
    assert!(store.pending_deletions().expect("pending").is_empty());
    // Twice: the second compaction's source is the file the flusher has
    // open; the switch must still go through.
    store.set(b"after", b"1").expect("set");
    model.set(b"after", b"1");
    model.flush_started(1_000);
    let info = store.flush().expect("flush").expect("commit");
    model
        .flush_acked(info.update_seq, info.timestamp)
        .expect("ack");
    let report = compact(&store, &mut model);
    assert!(!report.unlink_deferred, "{report:?}");
    assert_eq!(files(&sim), vec!["db.couch.3".to_string()]);
    crash_and_check(&mut model, store, &sim);
}

/// Defer: a reader's snapshot keeps the old file open through the switch.
/// The unlink is deferred, the reader keeps reading, and the unlink is
/// retried (and made durable) once the reader is gone.
#[test]
fn a_reader_snapshot_defers_the_unlink_until_it_closes() {
    let sim = windows_disk(2);
    let (store, mut model) = populated(&sim, 20);
    let reader = store.snapshot().expect("snapshot");
    let before = reader.all_docs().expect("read");
    let report = compact(&store, &mut model);
    assert!(report.unlink_deferred, "{report:?}");
    let old = Path::new(DB_DIR).join("db.couch.1");
    assert_eq!(store.pending_deletions().expect("pending"), vec![old]);
    assert_eq!(files(&sim), vec!["db.couch.1", "db.couch.2"]);
    // The reader still reads its (old) file.
    assert_eq!(reader.all_docs().expect("read after the switch"), before);
    // While it is open, retrying changes nothing.
    assert_eq!(store.retry_pending_deletions().expect("retry"), 0);
    assert_eq!(store.pending_deletions().expect("pending").len(), 1);
    drop(reader);
    assert_eq!(store.retry_pending_deletions().expect("retry"), 1);
    assert!(store.pending_deletions().expect("pending").is_empty());
    assert_eq!(files(&sim), vec!["db.couch.2"]);
    // The unlink was made durable: a crash now does not bring it back.
    let store = crash_and_check(&mut model, store, &sim);
    assert_eq!(files(&sim), vec!["db.couch.2"]);
    drop(store);
}

/// A crash while the unlink is still deferred: the next open removes the
/// stale revision (its handles died with the process) and the oracle
/// accepts the store.
#[test]
fn a_crash_before_the_deferred_unlink_loses_nothing() {
    let sim = windows_disk(3);
    let (store, mut model) = populated(&sim, 13);
    let reader = store.snapshot().expect("snapshot");
    let report = compact(&store, &mut model);
    assert!(report.unlink_deferred);
    let store = crash_and_check(&mut model, store, &sim);
    drop(reader);
    assert_eq!(files(&sim), vec!["db.couch.2"]);
    drop(store);
}

/// The background threads in Windows mode: a reader holds the old file
/// through a background compaction; the flusher retries the deferred unlink
/// after its commits, so once the reader is gone and one more write is
/// flushed, the old file is gone too.
#[test]
fn the_background_flusher_retries_deferred_unlinks() {
    let sim = windows_disk(4);
    let store = Store::open(sim.as_vfs(), DB_DIR, DB_NAME, config()).expect("open");
    let journal = Journal::default();
    let bg = store
        .start_background(BackgroundConfig {
            record_events: true,
            ..BackgroundConfig::default()
        })
        .expect("start");
    let mut last = 0;
    for i in 0..30u32 {
        last = journal
            .set(
                &store,
                format!("k{}", i % 9).as_bytes(),
                format!("v{i}").as_bytes(),
            )
            .expect("set");
    }
    store.wait_durable(last).expect("durable");
    let reader = store.snapshot().expect("snapshot");
    let ticket = bg.request_compaction().expect("request");
    assert_eq!(bg.wait_compactions(ticket).expect("compaction"), 1);
    assert_eq!(store.pending_deletions().expect("pending").len(), 1);
    let seqno = journal.set(&store, b"while-reading", b"1").expect("set");
    store.wait_durable(seqno).expect("durable");
    assert_eq!(
        store.pending_deletions().expect("pending").len(),
        1,
        "still open"
    );
    drop(reader);
    let seqno = journal.set(&store, b"after-reader", b"1").expect("set");
    store.wait_durable(seqno).expect("durable");
    let report = bg.shutdown().expect("shutdown");
    assert!(store.pending_deletions().expect("pending").is_empty());
    assert_eq!(report.deferred_unlinks_done, 1, "{report:?}");
    assert_eq!(files(&sim), vec!["db.couch.2"]);
    let mut model = Model::new();
    if let Err(e) = threads_support::feed(&mut model, &journal.mutations(), &report.events, None) {
        panic!("{e}");
    }
    if let Err(e) = threads_support::check_live_then_crash(&mut model, store, &sim, &config()) {
        panic!("{e}");
    }
}

/// A deferral the store forgets leaves a stale revision beside the current
/// one that nothing removes until some later open. The oracle judges the
/// directory only after an open, so the runner judges the running store's:
/// after the release's retry, a deferred old revision still on disk must
/// still be among the store's pending deletions (single-authority).
#[test]
fn a_forgotten_deferred_unlink_is_a_divergence() {
    use engine::mutants::Mutant;
    use harness::{run, RunOptions, Scenario, Step, SwarmConfig};
    let scenario = Scenario {
        config: SwarmConfig {
            windows: true,
            ..SwarmConfig::default()
        },
        steps: vec![
            Step::Set { key: 0, len: 0 },
            Step::Flush,
            Step::Hold { release: false },
            Step::CompactStart { purge: 0 },
            Step::CompactFinish,
            Step::Hold { release: true },
        ],
    };
    run(&scenario, &RunOptions::default()).expect("the correct engine removes the deferred file");
    let failure = run(
        &scenario,
        &RunOptions {
            mutant: Some(Mutant::DeferredUnlinkBareName),
            ..RunOptions::default()
        },
    )
    .expect_err("the forgotten deferral is caught");
    assert_eq!(failure.invariant(), "single-authority", "{failure}");
}

/// Retrying deferred unlinks, against what else can happen to them: the
/// removal is made durable at once (the directory image, before any open,
/// no longer has the old revision); a file some other retrier removed
/// first counts as gone; any error but "busy" is reported and the unlink
/// stays pending.
#[test]
fn deferred_unlink_retries_are_durable_and_report_errors() {
    let durable_names = |sim: &SimVfs| -> Vec<String> {
        sim.durable_files()
            .keys()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect()
    };
    let old = Path::new(DB_DIR).join("db.couch.1");

    // Removed and made durable.
    let sim = windows_disk(6);
    let (store, mut model) = populated(&sim, 12);
    let reader = store.snapshot().expect("snapshot");
    assert!(compact(&store, &mut model).unlink_deferred);
    drop(reader);
    assert!(durable_names(&sim).contains(&"db.couch.1".to_string()));
    assert_eq!(store.retry_pending_deletions().expect("retry"), 1);
    assert_eq!(
        durable_names(&sim),
        vec!["db.couch.2"],
        "the retried unlink must be durable before the next open"
    );

    // Already gone (another retrier was first): dropped, no error.
    let sim = windows_disk(7);
    let (store, mut model) = populated(&sim, 12);
    let reader = store.snapshot().expect("snapshot");
    assert!(compact(&store, &mut model).unlink_deferred);
    drop(reader);
    sim.as_vfs()
        .remove(&old)
        .expect("remove behind the store's back");
    assert_eq!(
        store.retry_pending_deletions().expect("NotFound is gone"),
        0
    );
    assert!(store.pending_deletions().expect("pending").is_empty());

    // EIO on the unlink: reported, still pending, removed on a later retry.
    let sim = windows_disk(8);
    let (store, mut model) = populated(&sim, 12);
    let reader = store.snapshot().expect("snapshot");
    assert!(compact(&store, &mut model).unlink_deferred);
    drop(reader);
    sim.set_faults(FaultConfig {
        windows_mode: true,
        eio_remove_nth: Some(1),
        ..FaultConfig::default()
    });
    assert!(
        store.retry_pending_deletions().is_err(),
        "an EIO on the unlink is not 'still open'"
    );
    assert_eq!(store.pending_deletions().expect("pending"), vec![old]);
    assert_eq!(store.retry_pending_deletions().expect("retry"), 1);
    assert_eq!(files(&sim), vec!["db.couch.2"]);
}
