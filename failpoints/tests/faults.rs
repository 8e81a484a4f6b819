//! The faults of issue #16 on the bare simulated disk: Linux's fsync-failure
//! pages, latent sector errors, ENOSPC, short writes, EIO on metadata calls,
//! directory durability, the unsynced bit flip, crashes at every I/O kind,
//! and the per-fault counters.

use std::path::{Path, PathBuf};

use engine::vfs::{OpenMode, Vfs};
use failpoints::{
    is_injected_fault, is_simulated_crash, is_simulated_eio, is_simulated_enospc,
    is_simulated_short_write, CrashMode, CrashTrigger, FaultConfig, FaultKind, IoKind, SimVfs,
    PAGE_BYTES,
};

fn path(name: &str) -> PathBuf {
    Path::new("/db").join(name)
}

fn sim_with(seed: u64, faults: FaultConfig) -> SimVfs {
    let sim = SimVfs::with_faults(seed, faults);
    sim.create_dir_all(Path::new("/db")).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    sim
}

#[test]
fn a_failed_fsync_keeps_its_pages_clean_until_rewritten() {
    let sim = sim_with(
        0,
        FaultConfig {
            eio_sync_nth: Some(2),
            ..FaultConfig::default()
        },
    );
    sim.put_file(&path("f"), b"").unwrap();
    let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    f.write_all_at(&[1u8; 100], 0).unwrap();
    f.sync().unwrap();
    f.write_all_at(&[2u8; 5000], 100).unwrap();
    let err = f.sync().unwrap_err();
    assert!(is_simulated_eio(&err) && is_injected_fault(&err), "{err}");
    // Reads still see the new bytes; pages 0 and 1 are kept clean.
    assert_eq!(sim.file(&path("f")).unwrap().len(), 5100);
    assert_eq!(sim.kept_failed_pages(&path("f")), vec![0, 1]);
    assert_eq!(sim.coverage().injected(FaultKind::FsyncEioKeptPages), 1);
    // A later fsync succeeds and writes nothing of them.
    f.sync().unwrap();
    sim.verify().unwrap();
    // A write into page 1 dirties it whole; page 0 stays clean.
    f.write_all_at(&[3u8; 10], 4500).unwrap();
    assert_eq!(sim.kept_failed_pages(&path("f")), vec![0]);
    f.sync().unwrap();
    // A process restart keeps the page cache as it is.
    sim.restart_process();
    assert_eq!(sim.file(&path("f")).unwrap()[200], 2);
    assert_eq!(sim.kept_failed_pages(&path("f")), vec![0]);
    // A power loss drops page 0's new bytes; page 1 was written whole.
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.reboot();
    let image = sim.file(&path("f")).unwrap();
    assert_eq!(image.len(), 5100);
    assert_eq!(&image[..100], &[1u8; 100][..]);
    assert!(image[100..PAGE_BYTES as usize].iter().all(|&b| b == 0));
    assert!(image[PAGE_BYTES as usize..4500].iter().all(|&b| b == 2));
    assert_eq!(&image[4500..4510], &[3u8; 10][..]);
    assert!(sim.kept_failed_pages(&path("f")).is_empty());
}

#[test]
fn a_latent_sector_error_lasts_until_the_sector_is_rewritten() {
    let sim = sim_with(0, FaultConfig::default());
    sim.put_file(&path("f"), &[9u8; 2048]).unwrap();
    sim.add_latent_sector_error(&path("f"), 600).unwrap();
    let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    let mut buf = [0u8; 100];
    f.read_exact_at(&mut buf, 0).unwrap();
    for _ in 0..2 {
        let err = f.read_exact_at(&mut buf, 550).unwrap_err();
        assert!(is_simulated_eio(&err), "{err}");
    }
    // A partial write of the sector does not remap it; a whole one does.
    f.write_all_at(&[1u8; 10], 520).unwrap();
    assert!(f.read_exact_at(&mut buf, 550).is_err());
    sim.set_crash_mode(Some(CrashMode::KeepAll));
    sim.reboot();
    let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
    assert!(
        f.read_exact_at(&mut buf, 550).is_err(),
        "bad sectors survive crashes"
    );
    f.write_all_at(&[1u8; 512], 512).unwrap();
    f.read_exact_at(&mut buf, 550).unwrap();
    assert_eq!(sim.coverage().injected(FaultKind::LatentSectorError), 4);
}

#[test]
fn read_faults_are_transient_or_latent() {
    let sim = sim_with(
        3,
        FaultConfig {
            eio_read_nth: Some(1),
            latent_error_read_nth: Some(3),
            ..FaultConfig::default()
        },
    );
    sim.put_file(&path("f"), &[9u8; 1024]).unwrap();
    let f = sim.open(&path("f"), OpenMode::Read).unwrap();
    let mut buf = [0u8; 1024];
    assert!(is_simulated_eio(&f.read_exact_at(&mut buf, 0).unwrap_err()));
    f.read_exact_at(&mut buf, 0).unwrap();
    assert!(f.read_exact_at(&mut buf, 0).is_err(), "a sector went bad");
    assert!(f.read_exact_at(&mut buf, 0).is_err(), "and stays bad");
    assert_eq!(sim.latent_sector_errors(&path("f")).len(), 1);
    let cov = sim.coverage();
    assert_eq!(cov.injected(FaultKind::ReadEio), 1);
    assert_eq!(cov.injected(FaultKind::LatentSectorError), 2);
}

#[test]
fn enospc_past_the_capacity_maybe_after_a_short_write() {
    let mut partial = 0;
    for seed in 0..20 {
        let sim = sim_with(
            seed,
            FaultConfig {
                capacity_bytes: Some(1000),
                ..FaultConfig::default()
            },
        );
        let f = sim.open(&path("f"), OpenMode::Create).unwrap();
        f.write_all_at(&[1u8; 600], 0).unwrap();
        let err = f.write_all_at(&[2u8; 600], 600).unwrap_err();
        assert!(
            is_simulated_enospc(&err) && is_injected_fault(&err),
            "{err}"
        );
        assert!(!is_simulated_eio(&err));
        let len = f.len().unwrap();
        assert!((600..=1000).contains(&len), "{len}");
        partial += usize::from(len > 600);
        // Overwrites within the file need no space.
        f.write_all_at(&[3u8; 100], 0).unwrap();
        assert!(is_simulated_enospc(&f.set_len(2000).unwrap_err()));
        assert_eq!(sim.coverage().injected(FaultKind::Enospc), 2);
    }
    assert!(partial > 0, "no ENOSPC landed in part");
}

#[test]
fn a_short_write_lands_a_proper_prefix_and_fails() {
    let sim = sim_with(
        1,
        FaultConfig {
            short_write_nth: Some(2),
            ..FaultConfig::default()
        },
    );
    let f = sim.open(&path("f"), OpenMode::Create).unwrap();
    f.write_all_at(b"abc", 0).unwrap();
    let err = f.write_all_at(&[7u8; 1000], 3).unwrap_err();
    assert!(
        is_simulated_short_write(&err) && is_injected_fault(&err),
        "{err}"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::WriteZero);
    let len = f.len().unwrap();
    assert!((3..1003).contains(&len), "{len}");
    assert_eq!(sim.coverage().injected(FaultKind::ShortWrite), 1);
}

#[test]
fn eio_on_every_metadata_call() {
    let sim = sim_with(0, FaultConfig::default());
    sim.set_faults(FaultConfig {
        eio_open_nth: Some(1),
        eio_set_len_nth: Some(1),
        eio_rename_nth: Some(1),
        eio_remove_nth: Some(1),
        eio_sync_dir_nth: Some(1),
        ..FaultConfig::default()
    });
    assert!(is_simulated_eio(
        &sim.open(&path("f"), OpenMode::Create).unwrap_err()
    ));
    assert!(
        sim.list(Path::new("/db")).unwrap().is_empty(),
        "nothing created"
    );
    let f = sim.open(&path("f"), OpenMode::Create).unwrap();
    assert!(is_simulated_eio(&f.set_len(10).unwrap_err()));
    assert_eq!(f.len().unwrap(), 0);
    assert!(is_simulated_eio(
        &sim.rename(&path("f"), &path("g")).unwrap_err()
    ));
    assert!(is_simulated_eio(&sim.remove(&path("f")).unwrap_err()));
    assert!(is_simulated_eio(
        &sim.sync_dir(Path::new("/db")).unwrap_err()
    ));
    // The failed directory fsync made nothing durable.
    assert!(!sim.snapshot()[0].entry_durable);
    sim.sync_dir(Path::new("/db")).unwrap();
    assert!(sim.snapshot()[0].entry_durable);
    let cov = sim.coverage();
    for kind in [
        FaultKind::EioOpen,
        FaultKind::EioSetLen,
        FaultKind::EioRename,
        FaultKind::EioRemove,
        FaultKind::EioSyncDir,
    ] {
        assert_eq!(cov.injected(kind), 1, "{kind}");
    }
}

#[test]
fn a_directory_is_durable_only_after_its_parent_is_synced() {
    let sim = SimVfs::new(0);
    sim.create_dir_all(Path::new("/a/b")).unwrap();
    assert_eq!(sim.dir_state(Path::new("/a/b")), Some(false));
    let f = sim.open(Path::new("/a/b/f"), OpenMode::Create).unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.sync().unwrap();
    sim.sync_dir(Path::new("/a/b")).unwrap();
    sim.sync_dir(Path::new("/a")).unwrap();
    // "/" never synced: /a, and all below it, is lost at a power cut.
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.reboot();
    assert_eq!(sim.dir_state(Path::new("/a")), None);
    assert!(sim.files().is_empty());
    assert!(sim.coverage().injected(FaultKind::LostDirEntry) >= 1);
    // Synced all the way up, it survives.
    sim.create_dir_all(Path::new("/a/b")).unwrap();
    let f = sim.open(Path::new("/a/b/f"), OpenMode::Create).unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.sync().unwrap();
    for d in ["/a/b", "/a", "/"] {
        sim.sync_dir(Path::new(d)).unwrap();
    }
    sim.reboot();
    assert_eq!(sim.file(Path::new("/a/b/f")).unwrap(), b"x");
}

#[test]
fn the_unsynced_bitflip_hits_a_header_block_when_there_is_one() {
    for seed in 0..8 {
        let sim = sim_with(seed, FaultConfig::default());
        sim.put_file(&path("f"), &[0u8; 4096]).unwrap();
        let f = sim.open(&path("f"), OpenMode::ReadWrite).unwrap();
        let mut block = vec![0u8; 4096];
        block[0] = engine::layout::MARKER_HEADER;
        f.write_all_at(&block, 4096).unwrap();
        sim.set_crash_mode(Some(CrashMode::KeepAll));
        let before = sim.file(&path("f")).unwrap();
        sim.reboot_with_bitflip_unsynced();
        let after = sim.file(&path("f")).unwrap();
        let diff: Vec<usize> = (0..after.len())
            .filter(|i| before[*i] != after[*i])
            .collect();
        assert_eq!(diff.len(), 1, "seed {seed}");
        assert!(
            (4097..4097 + 40).contains(&diff[0]),
            "seed {seed}: {diff:?}"
        );
        assert_eq!((before[diff[0]] ^ after[diff[0]]).count_ones(), 1);
        assert_eq!(sim.coverage().injected(FaultKind::TearUnsyncedBitflip), 1);
    }
}

#[test]
fn crashes_strike_before_or_after_every_kind_of_call() {
    for kind in IoKind::ALL {
        for after in [false, true] {
            let sim = sim_with(0, FaultConfig::default());
            sim.put_file(&path("f"), b"abc").unwrap();
            let trigger = if after {
                CrashTrigger::AfterIo { kind, nth: 1 }
            } else {
                CrashTrigger::AtIo { kind, nth: 1 }
            };
            sim.arm(trigger).unwrap();
            let f = sim.open(&path("f"), OpenMode::ReadWrite);
            let call: std::io::Result<()> = match (kind, f) {
                (IoKind::Open, Err(e)) => Err(e),
                (_, Err(e)) => panic!("{kind}: open failed: {e}"),
                (IoKind::Open, Ok(_)) => Ok(()),
                (IoKind::Read, Ok(f)) => f.read_exact_at(&mut [0u8; 1], 0),
                (IoKind::Write, Ok(f)) => f.write_all_at(b"x", 0),
                (IoKind::SetLen, Ok(f)) => f.set_len(1),
                (IoKind::Sync, Ok(f)) => f.sync(),
                (IoKind::Len, Ok(f)) => f.len().map(|_| ()),
                (IoKind::Rename, Ok(_)) => sim.rename(&path("f"), &path("g")),
                (IoKind::Remove, Ok(_)) => sim.remove(&path("f")),
                (IoKind::List, Ok(_)) => sim.list(Path::new("/db")).map(|_| ()),
                (IoKind::SyncDir, Ok(_)) => sim.sync_dir(Path::new("/db")),
                (IoKind::CreateDir, Ok(_)) => sim.create_dir_all(Path::new("/db/sub")),
            };
            let err = call.expect_err("the trigger fires");
            assert!(is_simulated_crash(&err), "{kind}: {err}");
            let kinds = sim.coverage();
            let want = if after {
                FaultKind::CrashAfterIo
            } else {
                FaultKind::CrashBeforeIo
            };
            assert_eq!(kinds.injected(want), 1, "{kind}");
            sim.reboot();
            // A second crash, during recovery, is counted as such.
            sim.arm(CrashTrigger::AtIo {
                kind: IoKind::List,
                nth: 1,
            })
            .unwrap();
            assert!(sim.list(Path::new("/db")).is_err());
            assert_eq!(sim.coverage().injected(FaultKind::RecoveryCrashRepeated), 1);
        }
    }
}

#[test]
fn fault_kind_names_are_stable_and_unique() {
    let names: std::collections::BTreeSet<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), FaultKind::ALL.len());
    for k in FaultKind::ALL {
        assert_eq!(FaultKind::from_name(k.name()), Some(k));
    }
    assert_eq!(FaultKind::FsyncEioKeptPages.name(), "fsync-eio-kept-pages");
    assert_eq!(IoKind::from_name("create_dir"), Some(IoKind::CreateDir));
    assert_eq!(IoKind::ALL[8], IoKind::SyncDir, "old indices are stable");
}
