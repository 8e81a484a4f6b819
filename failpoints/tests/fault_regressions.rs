//! Regression tests for data loss the harsher disk model of issue #16
//! exposed in the engine: each drives `engine::Store` on `SimVfs` through a
//! fault and a crash and checks that every acknowledged flush (and every
//! state an open returned) survives. Each failed on the engine before its fix.

use engine::{Config, ManualClock, Store};
use failpoints::{
    is_injected_fault, CrashMode, CrashTrigger, FaultConfig, FaultKind, SimVfs, TearUnit, TornFill,
};
use std::path::Path;
use std::sync::Arc;

fn config() -> Config {
    Config {
        fanout: 3,
        clock: Arc::new(ManualClock::new(100)),
        ..Config::default()
    }
}

/// `/db` created and durable, so each test isolates its own fault.
fn with_db_dir(sim: SimVfs) -> SimVfs {
    use engine::Vfs;
    sim.create_dir_all(Path::new("/db")).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    sim
}

fn open(sim: &SimVfs) -> Store {
    Store::open(sim.as_vfs(), "/db", "db", config()).expect("open")
}

fn value(store: &Store, key: &[u8]) -> Option<Vec<u8>> {
    store
        .get(key)
        .expect("get")
        .filter(|d| !d.deleted)
        .map(|d| d.value)
}

/// `EIO on fsync #2; delete k00; flush`, a process restart (the page cache,
/// with the failed header in it, survives), an open, then a power cut. The
/// open's state must survive the power cut: before the fix recovery found
/// the unsynced header in the page cache, its own fsync "succeeded" without
/// writing the failed page, and the power cut took the state back (the
/// delete was resurrected after readers had seen it).
#[test]
fn fsync_eio_then_restart_then_power_cut_keeps_what_the_open_showed() {
    for seed in 0..4 {
        let sim = with_db_dir(SimVfs::new(seed));
        let store = open(&sim);
        store.set(b"k00", b"v1").unwrap();
        store.flush().expect("the first flush is acknowledged");
        sim.set_faults(FaultConfig {
            eio_sync_nth: Some(2),
            ..FaultConfig::default()
        });
        store.delete(b"k00").unwrap();
        let err = store.flush().expect_err("the header fsync fails");
        assert!(
            matches!(&err, engine::Error::Io { source, .. } if is_injected_fault(source)),
            "{err}"
        );
        assert_eq!(sim.coverage().injected(FaultKind::FsyncEioKeptPages), 1);
        drop(store);

        sim.restart_process();
        sim.set_faults(FaultConfig::default());
        let store = open(&sim);
        let shown = value(&store, b"k00");
        assert!(shown.is_none() || shown.as_deref() == Some(b"v1".as_slice()));
        drop(store);

        sim.set_crash_mode(Some(CrashMode::DropUnsynced));
        sim.reboot();
        let store = open(&sim);
        assert_eq!(
            value(&store, b"k00"),
            shown,
            "seed {seed}: the state the open returned did not survive a power cut"
        );
    }
}

/// `set k00; flush` (acknowledged); crash at `flush::before_data_sync` of
/// `set k00; flush`, torn with zeroes on a device without power-safe
/// overwrite. Before the fix the second commit's first write started right
/// after the first header, inside its sector, and tearing that sector lost
/// the acknowledged flush.
#[test]
fn a_torn_commit_never_damages_the_previous_header() {
    for unit in [TearUnit::Sector, TearUnit::Page] {
        for fill in [TornFill::Zero, TornFill::Garbage] {
            for seed in 0..48 {
                let sim = with_db_dir(SimVfs::with_faults(
                    seed,
                    FaultConfig {
                        no_power_safe_overwrite: Some(unit),
                        ..FaultConfig::default()
                    },
                ));
                let _bound = failpoints::bind_thread(&sim);
                let store = open(&sim);
                store.set(b"k00", b"v1").unwrap();
                store.flush().expect("acknowledged");
                sim.arm(CrashTrigger::AtFailpoint {
                    name: "flush::before_data_sync".into(),
                    nth: 1,
                })
                .unwrap();
                store.set(b"k00", b"v2").unwrap();
                assert!(store.flush().is_err(), "the crash strikes");
                drop(store);
                sim.set_crash_mode(Some(CrashMode::Torn { fill }));
                sim.reboot();
                let store = Store::open(sim.as_vfs(), "/db", "db", config())
                    .unwrap_or_else(|e| panic!("{unit:?} {fill:?} seed {seed}: open: {e}"));
                assert_eq!(
                    value(&store, b"k00").as_deref(),
                    Some(b"v1".as_slice()),
                    "{unit:?} {fill:?} seed {seed}: the acknowledged flush is lost"
                );
            }
        }
    }
}

/// A new store's directory is an entry of its parent: the open must make it
/// durable, or a power cut after an acknowledged flush loses the directory
/// and the store with it.
#[test]
fn a_new_store_directory_survives_a_power_cut() {
    let sim = SimVfs::new(1);
    let store = Store::open(sim.as_vfs(), "/data/db", "db", config()).unwrap();
    store.set(b"k00", b"v1").unwrap();
    store.flush().expect("acknowledged");
    drop(store);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.reboot();
    assert_eq!(sim.dir_state(Path::new("/data/db")), Some(true));
    let store = Store::open(sim.as_vfs(), "/data/db", "db", config()).unwrap();
    assert_eq!(value(&store, b"k00").as_deref(), Some(b"v1".as_slice()));
}
