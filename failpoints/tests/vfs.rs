//! The simulated disk as a `Vfs`: the freeze, I/O triggers, crashes during
//! recovery, EIO, Windows mode and determinism.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::vfs::{OpenMode, Vfs, VfsFile};
use failpoints::{
    is_busy, is_simulated_crash, is_simulated_eio, ArmError, CrashCause, CrashMode, CrashTrigger,
    FaultConfig, FsyncFailure, IoKind, SimVfs,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn db() -> &'static Path {
    Path::new("/db")
}

fn path(name: &str) -> PathBuf {
    db().join(name)
}

/// A disk with `/db` created and its entry in `/` synced (a directory's
/// creation is durable only after its parent's fsync).
fn sim_with_dir(seed: u64) -> SimVfs {
    let sim = SimVfs::new(seed);
    sim.create_dir_all(db()).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    sim
}

fn assert_crashed<T: std::fmt::Debug>(result: io::Result<T>) {
    let err = result.expect_err("the disk is frozen");
    assert!(is_simulated_crash(&err), "unexpected error: {err}");
}

#[test]
fn basic_file_semantics() {
    let sim = sim_with_dir(0);
    assert_eq!(
        sim.open(&path("f"), OpenMode::Read).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    let f = sim.open(&path("f"), OpenMode::Create).unwrap();
    f.write_all_at(b"hello", 0).unwrap();
    f.write_all_at(b"!", 7).unwrap();
    assert_eq!(f.len().unwrap(), 8);
    let mut buf = [0u8; 8];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"hello\0\0!");
    assert_eq!(
        f.read_exact_at(&mut buf, 1).unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );
    f.set_len(2).unwrap();
    assert_eq!(sim.file(&path("f")).unwrap(), b"he");
    let r = sim.open(&path("f"), OpenMode::Read).unwrap();
    assert!(r.write_all_at(b"x", 0).is_err(), "read-only handle");
    assert_eq!(sim.list(db()).unwrap(), ["f"]);
    assert!(sim.exists(&path("f")).unwrap());
    assert!(!sim.exists(&path("g")).unwrap());
    assert!(!sim.exists(Path::new("/nope/g")).unwrap());
    assert!(sim.list(Path::new("/nope")).is_err());
    assert!(sim.open(Path::new("/nope/f"), OpenMode::Create).is_err());
    assert!(sim.rename(&path("f"), Path::new("/other/f")).is_err());
    let counts = sim.io_counts();
    assert_eq!(
        counts.get(IoKind::Write),
        3,
        "the read-only attempt counts too"
    );
    assert_eq!(counts.get(IoKind::Open), 4);
    sim.verify().unwrap();
}

/// `visible_bytes` is the length of everything `files` holds: visible
/// entries only (an unlinked file still open is not counted), unsynced
/// bytes included.
#[test]
fn visible_bytes_sums_what_files_holds() {
    let sim = sim_with_dir(1);
    let sum = |sim: &SimVfs| sim.files().values().map(|b| b.len() as u64).sum::<u64>();
    assert_eq!(sim.visible_bytes(), 0);
    let a = sim.open(&path("a"), OpenMode::Create).unwrap();
    a.write_all_at(&[7u8; 5000], 0).unwrap();
    a.sync().unwrap();
    a.write_all_at(b"unsynced", 5000).unwrap();
    let b = sim.open(&path("b"), OpenMode::Create).unwrap();
    b.write_all_at(b"bee", 10).unwrap();
    assert_eq!(sim.visible_bytes(), 5008 + 13);
    assert_eq!(sim.visible_bytes(), sum(&sim));
    sim.remove(&path("a")).unwrap();
    assert_eq!(sim.visible_bytes(), 13, "an unlinked file is not visible");
    assert_eq!(sim.visible_bytes(), sum(&sim));
    drop(a);
    sim.rename(&path("b"), &path("c")).unwrap();
    assert_eq!(sim.visible_bytes(), 13);
    assert_eq!(sim.visible_bytes(), sum(&sim));
}

/// Writes through its handle when dropped, as an engine's file wrapper
/// might flush a buffer in `Drop`.
struct WritesOnDrop(Arc<dyn VfsFile>);

impl Drop for WritesOnDrop {
    fn drop(&mut self) {
        let _ = self.0.write_all_at(b"from drop", 100);
        let _ = self.0.sync();
    }
}

#[test]
fn the_freeze_stops_every_later_call() {
    let sim = sim_with_dir(0);
    sim.set_crash_mode(Some(CrashMode::KeepAll));
    let f = sim.open(&path("f"), OpenMode::Create).unwrap();
    f.write_all_at(b"before", 0).unwrap();
    let on_drop = WritesOnDrop(Arc::clone(&f));
    sim.crash();
    assert!(sim.is_crashed());
    let calls = sim.io_counts();

    assert_crashed(sim.open(&path("f"), OpenMode::Read));
    assert_crashed(sim.open(&path("g"), OpenMode::Create));
    assert_crashed(sim.rename(&path("f"), &path("g")));
    assert_crashed(sim.remove(&path("f")));
    assert_crashed(sim.list(db()));
    assert_crashed(sim.sync_dir(db()));
    assert_crashed(sim.create_dir_all(Path::new("/elsewhere")));
    assert_crashed(sim.exists(&path("f")));
    let mut buf = [0u8; 1];
    assert_crashed(f.read_exact_at(&mut buf, 0));
    assert_crashed(f.write_all_at(b"after", 0));
    assert_crashed(f.len());
    assert_crashed(f.set_len(0));
    assert_crashed(f.sync());
    drop(on_drop);
    assert_eq!(sim.io_counts(), calls, "refused calls are not counted");

    sim.reboot();
    // KeepAll: everything before the crash survived, nothing after it did.
    assert_eq!(sim.file(&path("f")).unwrap(), b"before");
    assert_eq!(sim.list(db()).unwrap(), ["f"]);
    // Handles from before the crash stay dead; new ones see the image.
    let err = f.write_all_at(b"late", 0).unwrap_err();
    assert!(is_simulated_crash(&err));
    let g = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    g.write_all_at(b"B", 0).unwrap();
    assert_eq!(sim.file(&path("f")).unwrap(), b"Before");
    drop(f);
    sim.verify().unwrap();
}

#[test]
fn crash_before_an_io_call_changes_nothing() {
    let sim = sim_with_dir(0);
    sim.set_crash_mode(Some(CrashMode::KeepAll));
    let f = sim.open(&path("f"), OpenMode::Create).unwrap();
    sim.arm(CrashTrigger::AtIo {
        kind: IoKind::Write,
        nth: 3,
    })
    .unwrap();
    f.write_all_at(b"1", 0).unwrap();
    f.sync().unwrap();
    f.write_all_at(b"2", 1).unwrap();
    assert_crashed(f.write_all_at(b"3", 2));
    assert!(sim.armed().is_none(), "a crash disarms");
    let record = sim.reboot();
    assert_eq!(
        record.cause,
        CrashCause::Trigger(CrashTrigger::AtIo {
            kind: IoKind::Write,
            nth: 3
        })
    );
    assert_eq!(record.mode, Some(CrashMode::KeepAll));
    assert_eq!(
        record.io_calls, 7,
        "create_dir, sync_dir, open, write, sync, write, write"
    );
    assert_eq!(sim.file(&path("f")).unwrap(), b"12");
    assert_eq!(sim.coverage().io_crashes["before::write"], 1);
}

#[test]
fn crash_after_an_io_call_keeps_its_effect() {
    // The fsync reached the disk, but the engine only saw an error: the data
    // is durable although it was never acknowledged.
    let sim = sim_with_dir(0);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.put_file(&path("f"), b"").unwrap();
    let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    f.write_all_at(b"data", 0).unwrap();
    sim.arm(CrashTrigger::AfterIo {
        kind: IoKind::Sync,
        nth: 1,
    })
    .unwrap();
    assert_crashed(f.sync());
    sim.reboot();
    assert_eq!(sim.file(&path("f")).unwrap(), b"data");

    // The same crash before the fsync loses the data.
    let sim = sim_with_dir(0);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.put_file(&path("f"), b"").unwrap();
    let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    f.write_all_at(b"data", 0).unwrap();
    sim.arm(CrashTrigger::AtIo {
        kind: IoKind::Sync,
        nth: 1,
    })
    .unwrap();
    assert_crashed(f.sync());
    sim.reboot();
    assert_eq!(sim.file(&path("f")).unwrap(), b"");
}

#[test]
fn arming_checks_the_trigger() {
    let sim = SimVfs::new(0);
    assert_eq!(
        sim.arm(CrashTrigger::AtIo {
            kind: IoKind::Read,
            nth: 0
        }),
        Err(ArmError::ZeroNth)
    );
    assert_eq!(
        sim.arm(CrashTrigger::AtFailpoint {
            name: "flush::typo".into(),
            nth: 1
        }),
        Err(ArmError::UnknownFailpoint("flush::typo".into()))
    );
    let t = CrashTrigger::AtFailpoint {
        name: "compact::start".into(),
        nth: 2,
    };
    sim.arm(t.clone()).unwrap();
    assert_eq!(sim.armed(), Some((t.clone(), 2)));
    assert_eq!(sim.disarm(), Some(t));
    assert_eq!(sim.armed(), None);
}

/// A toy recovery: truncate the file to its last 4-byte record boundary,
/// make the truncation durable, and append a marker.
fn toy_recovery(sim: &SimVfs) -> io::Result<()> {
    let f = sim.open(&path("log"), OpenMode::ReadWrite)?;
    let len = f.len()?;
    f.set_len(len - len % 4)?;
    f.sync()?;
    f.write_all_at(b"RCVD", len - len % 4)?;
    f.sync()
}

#[test]
fn a_crash_during_recovery_works() {
    let sim = sim_with_dir(9);
    sim.put_file(&path("log"), b"rec1rec2").unwrap();
    let f = sim.open(&path("log"), OpenMode::ReadWrite).unwrap();
    f.write_all_at(b"rec3re", 8).unwrap();
    sim.set_crash_mode(Some(CrashMode::KeepAll));
    sim.crash();
    sim.reboot();
    assert_eq!(sim.file(&path("log")).unwrap(), b"rec1rec2rec3re");

    // Crash right after the truncation took effect, before its fsync: the
    // truncation is lost under LoseSetLen and kept under KeepAll.
    for (mode, expected) in [
        (CrashMode::LoseSetLen, &b"rec1rec2rec3re"[..]),
        (CrashMode::DropUnsynced, &b"rec1rec2rec3re"[..]),
        (CrashMode::KeepAll, &b"rec1rec2rec3"[..]),
    ] {
        let sim2 = sim_with_dir(9);
        sim2.put_file(&path("log"), b"rec1rec2rec3re").unwrap();
        sim2.set_crash_mode(Some(mode));
        sim2.arm(CrashTrigger::AfterIo {
            kind: IoKind::SetLen,
            nth: 1,
        })
        .unwrap();
        assert_crashed(toy_recovery(&sim2));
        sim2.reboot();
        assert_eq!(sim2.file(&path("log")).unwrap(), expected, "mode {mode}");
        // And recovery run again, uninterrupted, finishes the job.
        toy_recovery(&sim2).unwrap();
        sim2.reboot();
        assert_eq!(sim2.file(&path("log")).unwrap(), b"rec1rec2rec3RCVD");
        assert_eq!(sim2.crashes().len(), 2);
    }

    // Crash at the second fsync of recovery, then a third crash in the
    // recovery of that; every image keeps the durable truncation.
    sim.set_crash_mode(None);
    sim.arm(CrashTrigger::AtIo {
        kind: IoKind::Sync,
        nth: 2,
    })
    .unwrap();
    assert_crashed(toy_recovery(&sim));
    sim.reboot();
    let image = sim.file(&path("log")).unwrap();
    // The truncation to 12 was synced; the marker may or may not be there.
    assert!(image.starts_with(b"rec1rec2rec3"), "{image:?}");
    assert!(image.len() == 12 || image.len() == 16, "{image:?}");
    sim.arm(CrashTrigger::AtIo {
        kind: IoKind::Write,
        nth: 1,
    })
    .unwrap();
    assert_crashed(toy_recovery(&sim));
    sim.reboot();
    toy_recovery(&sim).unwrap();
    let image = sim.file(&path("log")).unwrap();
    assert!(image.starts_with(b"rec1rec2rec3") && image.ends_with(b"RCVD"));
    assert_eq!(sim.crashes().len(), 3);
}

#[test]
fn eio_on_fsync_drops_the_dirty_data_in_revert_mode() {
    let sim = SimVfs::with_faults(
        0,
        FaultConfig {
            eio_sync_nth: Some(2),
            fsync_failure: FsyncFailure::Revert,
            ..FaultConfig::default()
        },
    );
    sim.put_file(&path("f"), b"").unwrap();
    let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    f.write_all_at(b"one", 0).unwrap();
    f.sync().unwrap();
    f.write_all_at(b"two", 3).unwrap();
    let err = f.sync().unwrap_err();
    assert!(is_simulated_eio(&err), "{err}");
    // Linux: the dirty pages are gone; the visible file is what was synced.
    assert_eq!(sim.file(&path("f")).unwrap(), b"one");
    assert_eq!(f.len().unwrap(), 3);
    // A later fsync succeeds and proves nothing: "two" is not durable.
    f.sync().unwrap();
    sim.set_crash_mode(Some(CrashMode::KeepAll));
    sim.reboot();
    assert_eq!(sim.file(&path("f")).unwrap(), b"one");
}

#[test]
fn eio_on_write_writes_nothing() {
    let sim = SimVfs::with_faults(
        0,
        FaultConfig {
            eio_write_nth: Some(2),
            ..FaultConfig::default()
        },
    );
    sim.put_file(&path("f"), b"").unwrap();
    let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    f.write_all_at(b"a", 0).unwrap();
    assert!(is_simulated_eio(&f.write_all_at(b"b", 1).unwrap_err()));
    f.write_all_at(b"c", 1).unwrap();
    assert_eq!(sim.file(&path("f")).unwrap(), b"ac");
    assert_eq!(sim.io_counts().get(IoKind::Write), 3);
}

/// Which of 200 writes and syncs fail at a 10% EIO rate.
fn eio_pattern(seed: u64) -> Vec<bool> {
    let sim = SimVfs::with_faults(
        seed,
        FaultConfig {
            eio_write_per_million: 100_000,
            eio_sync_per_million: 100_000,
            ..FaultConfig::default()
        },
    );
    sim.put_file(&path("f"), b"").unwrap();
    let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    (0..100u64)
        .flat_map(|i| [f.write_all_at(b"x", i).is_err(), f.sync().is_err()])
        .collect()
}

#[test]
fn eio_rates_are_seeded() {
    assert_eq!(eio_pattern(5), eio_pattern(5));
    assert_ne!(eio_pattern(5), eio_pattern(6));
    let failures = eio_pattern(5).iter().filter(|&&e| e).count();
    assert!((5..=60).contains(&failures), "{failures} of 200 at 10%");
}

#[test]
fn windows_mode_refuses_to_rename_or_unlink_an_open_file() {
    let sim = SimVfs::with_faults(
        0,
        FaultConfig {
            windows_mode: true,
            ..FaultConfig::default()
        },
    );
    sim.put_file(&path("db.couch.1"), b"old").unwrap();
    sim.put_file(&path("db.couch.2.compact"), b"new").unwrap();
    let old = sim.open(&path("db.couch.1"), OpenMode::Read).unwrap();
    let new = sim
        .open(&path("db.couch.2.compact"), OpenMode::Read)
        .unwrap();

    let err = sim
        .rename(&path("db.couch.2.compact"), &path("db.couch.2"))
        .unwrap_err();
    assert!(is_busy(&err), "{err}");
    assert!(err.to_string().contains("device or resource busy"));
    assert!(is_busy(&sim.remove(&path("db.couch.1")).unwrap_err()));
    // Replacing an open file is refused too.
    drop(new);
    assert!(is_busy(
        &sim.rename(&path("db.couch.2.compact"), &path("db.couch.1"))
            .unwrap_err()
    ));
    sim.rename(&path("db.couch.2.compact"), &path("db.couch.2"))
        .unwrap();
    drop(old);
    sim.remove(&path("db.couch.1")).unwrap();
    assert_eq!(sim.list(db()).unwrap(), ["db.couch.2"]);

    // Handles from before a crash are not open any more.
    let stale = sim.open(&path("db.couch.2"), OpenMode::Read).unwrap();
    sim.reboot();
    sim.remove(&path("db.couch.2")).unwrap();
    drop(stale);
}

#[test]
fn without_windows_mode_open_files_can_be_renamed_and_unlinked() {
    let sim = SimVfs::new(0);
    sim.put_file(&path("a"), b"a").unwrap();
    let a = sim.open(&path("a"), OpenMode::ReadWrite).unwrap();
    sim.rename(&path("a"), &path("b")).unwrap();
    sim.remove(&path("b")).unwrap();
    a.write_all_at(b"still writable", 0).unwrap();
    assert!(sim.list(db()).unwrap().is_empty());
}

/// A seeded workload of creates, writes, set_lens, syncs, renames, unlinks
/// and directory syncs, with two crashes at seeded I/O calls; errors are
/// ignored as an engine that just stopped would. Returns the final digest.
fn workload(seed: u64) -> String {
    let sim = sim_with_dir(seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    for _round in 0..3 {
        let kind = IoKind::ALL[rng.gen_range(0..IoKind::ALL.len())];
        sim.arm(CrashTrigger::AtIo {
            kind,
            nth: rng.gen_range(1..20),
        })
        .unwrap();
        let mut handles: Vec<Arc<dyn VfsFile>> = Vec::new();
        for _ in 0..60 {
            let name = path(&format!("f{}", rng.gen_range(0..4)));
            let _ = match rng.gen_range(0..10) {
                0 | 1 => sim.open(&name, OpenMode::Create).map(|f| handles.push(f)),
                2..=4 if !handles.is_empty() => {
                    let f = &handles[rng.gen_range(0..handles.len())];
                    let len = rng.gen_range(1..2000);
                    let byte = rng.gen::<u8>();
                    f.write_all_at(&vec![byte; len], rng.gen_range(0..3000))
                }
                5 if !handles.is_empty() => {
                    handles[rng.gen_range(0..handles.len())].set_len(rng.gen_range(0..3000))
                }
                6 if !handles.is_empty() => handles[rng.gen_range(0..handles.len())].sync(),
                7 => sim.rename(&name, &path(&format!("f{}", rng.gen_range(0..4)))),
                8 => sim.remove(&name),
                _ => sim.sync_dir(db()),
            };
        }
        sim.verify().unwrap();
        sim.reboot();
        sim.verify().unwrap();
    }
    assert_eq!(sim.crashes().len(), 3);
    sim.image_digest()
}

#[test]
fn the_same_seed_gives_the_same_image() {
    let mut digests = BTreeSet::new();
    for seed in 0..40 {
        let first = workload(seed);
        assert_eq!(first, workload(seed), "seed {seed}");
        digests.insert(first);
    }
    assert!(digests.len() > 30, "seeds should differ: {}", digests.len());
}

#[test]
fn digests_cover_names_and_bytes() {
    let a = SimVfs::new(0);
    a.put_file(&path("x"), b"1").unwrap();
    a.put_file(&path("y"), b"2").unwrap();
    let b = SimVfs::new(1);
    b.put_file(&path("y"), b"2").unwrap();
    b.put_file(&path("x"), b"1").unwrap();
    assert_eq!(a.image_digest(), b.image_digest());
    assert_eq!(a.image_digest(), a.durable_digest());
    b.put_file(&path("x"), b"3").unwrap();
    assert_ne!(a.image_digest(), b.image_digest());
    let c = SimVfs::new(0);
    c.put_file(&path("x1"), b"").unwrap();
    c.put_file(&path("y"), b"2").unwrap();
    assert_ne!(a.image_digest(), c.image_digest());
    assert_eq!(a.image_digest().len(), 64);
}

#[test]
fn snapshot_tells_durable_from_visible() {
    let sim = sim_with_dir(0);
    sim.put_file(&path("a"), b"abc").unwrap();
    let f = sim.open(&path("b"), OpenMode::Create).unwrap();
    f.write_all_at(b"xy", 0).unwrap();
    let snap = sim.snapshot();
    assert_eq!(snap.len(), 2);
    assert!(snap[0].entry_durable && snap[0].pending_ops == 0);
    assert_eq!(snap[1].path, path("b"));
    assert!(!snap[1].entry_durable);
    assert_eq!(
        (snap[1].visible.as_slice(), snap[1].durable.as_slice()),
        (&b"xy"[..], &b""[..])
    );
    assert_eq!(sim.durable_files().len(), 1);
}
