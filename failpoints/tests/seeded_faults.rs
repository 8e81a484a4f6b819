//! The seeded bugs of issue #16, each exposed by a `SimVfs` fault and crash
//! sequence (acknowledged data missing after recovery), and the same
//! sequence passing on the correct engine. Without these, the new faults
//! could be modelled wrongly and no test would notice.

use engine::mutants::{self, Mutant};
use engine::vfs::Vfs;
use engine::{CompactionOptions, Config, ManualClock, Progress, Store};
use failpoints::{
    is_injected_fault, CrashMode, CrashTrigger, FaultConfig, FaultKind, SimVfs, TearUnit, TornFill,
};
use std::path::Path;
use std::sync::Arc;

fn config() -> Config {
    Config {
        fanout: 3,
        clock: Arc::new(ManualClock::new(100)),
        copy_batch_docs: 3,
        ..Config::default()
    }
}

fn db_sim(seed: u64, faults: FaultConfig) -> SimVfs {
    let sim = SimVfs::with_faults(seed, faults);
    sim.create_dir_all(Path::new("/db")).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    sim
}

fn open(sim: &SimVfs) -> engine::Result<Store> {
    Store::open(sim.as_vfs(), "/db", "db", config())
}

fn value(store: &Store, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
    store
        .get(key)
        .map(|d| d.filter(|d| !d.deleted).map(|d| d.value))
        .map_err(|e| e.to_string())
}

/// Switches a seeded bug on for this thread until dropped.
struct WithMutant;

impl WithMutant {
    fn on(mutant: Option<Mutant>) -> WithMutant {
        mutants::set(mutant);
        WithMutant
    }
}

impl Drop for WithMutant {
    fn drop(&mut self) {
        mutants::set(None);
    }
}

/// Run `case` over `seeds` with `mutant` on, then off. Returns the first
/// loss found with the mutant on; panics if the correct engine loses data.
fn exposes(mutant: Mutant, seeds: std::ops::Range<u64>, case: impl Fn(u64) -> Result<(), String>) {
    let mut caught = None;
    {
        let _on = WithMutant::on(Some(mutant));
        for seed in seeds.clone() {
            if let Err(e) = case(seed) {
                caught = Some(format!("seed {seed}: {e}"));
                break;
            }
        }
    }
    let why = caught.unwrap_or_else(|| panic!("{mutant}: no sequence exposed it"));
    eprintln!("{mutant} exposed: {why}");
    let _off = WithMutant::on(None);
    for seed in seeds {
        if let Err(e) = case(seed) {
            panic!("the correct engine failed the {mutant} sequence, seed {seed}: {e}");
        }
    }
}

/// EIO on the header fsync, process restart, open, power cut: the open's
/// state must survive.
fn fsync_eio_restart_power_cut(seed: u64) -> Result<(), String> {
    let sim = db_sim(seed, FaultConfig::default());
    let store = open(&sim).map_err(|e| e.to_string())?;
    store.set(b"k00", b"v1").unwrap();
    store.flush().map_err(|e| e.to_string())?;
    sim.set_faults(FaultConfig {
        eio_sync_nth: Some(2),
        ..FaultConfig::default()
    });
    store.set(b"k00", b"v2").unwrap();
    if store.flush().is_ok() {
        return Err("flush acknowledged after a failed fsync".into());
    }
    drop(store);
    sim.restart_process();
    sim.set_faults(FaultConfig::default());
    let store = open(&sim).map_err(|e| e.to_string())?;
    let shown = value(&store, b"k00")?;
    drop(store);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.reboot();
    let store = open(&sim).map_err(|e| e.to_string())?;
    let after = value(&store, b"k00")?;
    if after != shown {
        return Err(format!("open showed {shown:?}, a power cut left {after:?}"));
    }
    Ok(())
}

#[test]
fn trust_page_cache_after_fsync_eio_is_caught() {
    exposes(
        Mutant::TrustPageCacheAfterFsyncFailure,
        0..4,
        fsync_eio_restart_power_cut,
    );
}

/// An acknowledged flush, then a commit torn with zeroes at its data sync
/// on a device without power-safe overwrite.
fn torn_commit(seed: u64) -> Result<(), String> {
    let sim = db_sim(
        seed,
        FaultConfig {
            no_power_safe_overwrite: Some(TearUnit::Sector),
            ..FaultConfig::default()
        },
    );
    let _bound = failpoints::bind_thread(&sim);
    let store = open(&sim).map_err(|e| e.to_string())?;
    store.set(b"k00", b"v1").unwrap();
    store.flush().map_err(|e| e.to_string())?;
    sim.arm(CrashTrigger::AtFailpoint {
        name: "flush::before_data_sync".into(),
        nth: 1,
    })
    .unwrap();
    store.set(b"k00", b"v2").unwrap();
    let _ = store.flush();
    drop(store);
    sim.set_crash_mode(Some(CrashMode::Torn {
        fill: TornFill::Zero,
    }));
    sim.reboot();
    let store = open(&sim).map_err(|e| e.to_string())?;
    match value(&store, b"k00")? {
        Some(v) if v == b"v1" => Ok(()),
        other => Err(format!("acknowledged v1, found {other:?}")),
    }
}

#[test]
fn commit_shares_header_sector_is_caught() {
    exposes(Mutant::CommitSharesHeaderSector, 0..32, torn_commit);
}

/// A new store in a new directory, an acknowledged flush, a power cut.
fn new_dir_power_cut(seed: u64) -> Result<(), String> {
    let sim = SimVfs::new(seed);
    let store = Store::open(sim.as_vfs(), "/data/db", "db", config()).map_err(|e| e.to_string())?;
    store.set(b"k00", b"v1").unwrap();
    store.flush().map_err(|e| e.to_string())?;
    drop(store);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.reboot();
    let store = Store::open(sim.as_vfs(), "/data/db", "db", config()).map_err(|e| e.to_string())?;
    match value(&store, b"k00")? {
        Some(v) if v == b"v1" => Ok(()),
        other => Err(format!("acknowledged v1, found {other:?}")),
    }
}

#[test]
fn store_dir_not_synced_is_caught() {
    exposes(Mutant::StoreDirNotSynced, 0..2, new_dir_power_cut);
}

/// Flushes, a compaction that crashes after its rename is durable but
/// before the old revision is unlinked, then a latent sector error in the
/// new revision: the open must fail and leave the old revision, from which
/// an operator salvages every flush acknowledged before the switch (here,
/// all of them). Before the fix the open deleted the old revision first.
fn lower_rev_salvage(seed: u64) -> Result<(), String> {
    let sim = db_sim(seed, FaultConfig::default());
    let _bound = failpoints::bind_thread(&sim);
    let store = open(&sim).map_err(|e| e.to_string())?;
    let mut acked = Vec::new();
    for i in 0..6u32 {
        let key = format!("k{i:02}").into_bytes();
        store.set(&key, b"v").unwrap();
        store.flush().map_err(|e| e.to_string())?;
        acked.push(key);
    }
    sim.arm(CrashTrigger::AtFailpoint {
        name: "compact::before_unlink".into(),
        nth: 1,
    })
    .unwrap();
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .map_err(|e| e.to_string())?;
    for _ in 0..100 {
        match c.step() {
            Ok(Progress::Done(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    drop(c);
    drop(store);
    if !sim.is_crashed() {
        return Err("the compaction never reached its unlink".into());
    }
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.reboot();
    let rev2 = Path::new("/db/db.couch.2");
    sim.add_latent_sector_error(rev2, 0)
        .map_err(|e| e.to_string())?;
    match open(&sim) {
        Ok(_) => return Err("the open read through a bad sector".into()),
        Err(engine::Error::Io { source, .. }) if is_injected_fault(&source) => {}
        Err(e) => return Err(format!("open failed with an unexplained error: {e}")),
    }
    // The operator gives up on the unreadable revision.
    sim.remove(rev2).map_err(|e| e.to_string())?;
    sim.sync_dir(Path::new("/db")).map_err(|e| e.to_string())?;
    let store = open(&sim).map_err(|e| e.to_string())?;
    for key in &acked {
        if value(&store, key)?.is_none() {
            return Err(format!(
                "{} lost: the lower revision was deleted before the chosen one recovered",
                String::from_utf8_lossy(key)
            ));
        }
    }
    Ok(())
}

#[test]
fn lower_rev_deleted_early_is_caught() {
    exposes(Mutant::LowerRevDeletedEarly, 0..2, lower_rev_salvage);
}

/// A short write of the bodies of a flush: the flush must not be
/// acknowledged, or if it is, its data must be there after a restart.
fn short_write(seed: u64) -> Result<(), String> {
    let sim = db_sim(seed, FaultConfig::default());
    let store = open(&sim).map_err(|e| e.to_string())?;
    store.set(b"k00", b"v1").unwrap();
    store.flush().map_err(|e| e.to_string())?;
    sim.set_faults(FaultConfig {
        short_write_nth: Some(1),
        ..FaultConfig::default()
    });
    let big = vec![7u8; 3000];
    store.set(b"k01", &big).unwrap();
    let acked = store.flush().is_ok();
    if sim.coverage().injected(FaultKind::ShortWrite) != 1 {
        return Err("no short write was injected".into());
    }
    drop(store);
    sim.set_faults(FaultConfig::default());
    sim.set_crash_mode(Some(CrashMode::KeepAll));
    sim.reboot();
    let store = open(&sim).map_err(|e| e.to_string())?;
    if value(&store, b"k00")?.as_deref() != Some(b"v1".as_slice()) {
        return Err("the first acknowledged flush is lost".into());
    }
    if acked && value(&store, b"k01")?.as_deref() != Some(big.as_slice()) {
        return Err("a flush acknowledged after a short write lost its data".into());
    }
    Ok(())
}

#[test]
fn short_write_taken_complete_is_caught() {
    exposes(Mutant::ShortWriteTakenComplete, 0..8, short_write);
}

/// Acknowledged flushes, a power cut, and a transient EIO on the first read
/// of the next open (recovery's backward scan): the open fails; a retry
/// recovers everything.
fn read_error_during_scan(seed: u64) -> Result<(), String> {
    let sim = db_sim(seed, FaultConfig::default());
    let store = open(&sim).map_err(|e| e.to_string())?;
    for i in 0..4u32 {
        store.set(format!("k{i:02}").as_bytes(), b"v").unwrap();
        store.flush().map_err(|e| e.to_string())?;
    }
    drop(store);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.reboot();
    sim.set_faults(FaultConfig {
        eio_read_nth: Some(1),
        ..FaultConfig::default()
    });
    match open(&sim) {
        Err(engine::Error::Io { source, .. }) if is_injected_fault(&source) => {}
        Err(e) => return Err(format!("open failed with an unexplained error: {e}")),
        Ok(_) => {}
    }
    sim.set_faults(FaultConfig::default());
    let store = open(&sim).map_err(|e| e.to_string())?;
    for i in 0..4u32 {
        if value(&store, format!("k{i:02}").as_bytes())?.is_none() {
            return Err(format!("k{i:02} lost after a read error during recovery"));
        }
    }
    Ok(())
}

#[test]
fn read_error_as_eof_is_caught() {
    exposes(Mutant::ReadErrorAsEof, 0..2, read_error_during_scan);
}
