//! The crash-image enumeration: counts equal a hand computation, image #0
//! is the drop-unsynced image, and equal digests mean equal images (the
//! deduplication `crashfuzz exhaust` does never drops a distinct image).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::vfs::OpenMode;
use failpoints::{CrashMode, ImageBounds, SimVfs, TornFill};

/// A disk with one synced file and, unsynced: a 600-byte append to it (two
/// sectors), a new file with one 100-byte write, and that file's directory
/// entry.
fn disk() -> SimVfs {
    let sim = SimVfs::new(11);
    let vfs = sim.as_vfs();
    vfs.create_dir_all(Path::new("/d")).unwrap();
    vfs.sync_dir(Path::new("/")).unwrap();
    let a = vfs.open(Path::new("/d/a"), OpenMode::Create).unwrap();
    a.write_all_at(&[1u8; 100], 0).unwrap();
    a.sync().unwrap();
    vfs.sync_dir(Path::new("/d")).unwrap();
    a.write_all_at(&[2u8; 600], 100).unwrap();
    let b = vfs.open(Path::new("/d/b"), OpenMode::Create).unwrap();
    b.write_all_at(&[3u8; 100], 0).unwrap();
    sim.crash();
    sim
}

fn state(sim: &SimVfs) -> BTreeMap<PathBuf, Vec<u8>> {
    sim.files()
}

#[test]
fn counts_equal_the_hand_computation() {
    let sim = disk();
    let none = ImageBounds {
        fills: vec![],
        ..ImageBounds::default()
    };
    // /d: 1 pending create (2 prefixes); a: 1 write (2 subsets); b: 1
    // write (2): 8.
    assert_eq!(sim.crash_image_count(&none).allowed, 8);
    // With fills Zero and Old: a's write covers sectors 0 and 1 (offsets
    // 100..700): 1 + 1 + 2 * 2 = 6 choices; b's 100 bytes one sector:
    // 1 + 1 + 2 = 4; 2 * 6 * 4 = 48.
    let two = ImageBounds {
        fills: vec![TornFill::Zero, TornFill::Old],
        ..ImageBounds::default()
    };
    assert_eq!(sim.crash_image_count(&two).allowed, 48);
    let capped = ImageBounds {
        max_images: 10,
        ..two
    };
    let count = sim.crash_image_count(&capped);
    assert_eq!((count.allowed, count.enumerated), (48, 10));
}

#[test]
fn image_zero_is_drop_unsynced() {
    let sim = disk();
    let expected = sim.durable_digest();
    let record = sim.reboot_into(&ImageBounds::default(), 0).unwrap();
    assert_eq!(record.mode, Some(CrashMode::DropUnsynced));
    assert_eq!(sim.image_digest(), expected);
}

#[test]
fn equal_digests_mean_equal_images() {
    let bounds = ImageBounds {
        fills: vec![TornFill::Zero, TornFill::Old, TornFill::Garbage],
        ..ImageBounds::default()
    };
    let n = disk().crash_image_count(&bounds).enumerated;
    let mut by_digest: BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>> = BTreeMap::new();
    let mut distinct = std::collections::BTreeSet::new();
    for i in 0..n {
        let sim = disk();
        let digest = sim.crash_image_digest(&bounds, i).unwrap();
        sim.reboot_into(&bounds, i).unwrap();
        let image = state(&sim);
        distinct.insert(image.clone());
        match by_digest.get(&digest) {
            Some(seen) => assert_eq!(seen, &image, "image {i}: one digest, two images"),
            None => {
                by_digest.insert(digest, image);
            }
        }
        // Replaying the same choice gives the same image.
        let again = disk();
        again.reboot_into(&bounds, i).unwrap();
        assert_eq!(state(&again), state(&sim), "image {i} is deterministic");
    }
    // Distinct images, distinct digests; and some choices coincide (a lost
    // directory entry makes b's bytes irrelevant).
    assert_eq!(by_digest.len(), distinct.len());
    assert!(by_digest.len() < n as usize);
    assert!(disk().reboot_into(&bounds, n).is_none());
}
