//! Each crash mode produces exactly the images it allows.
//!
//! For a fixed history (synced bytes, then unsynced writes and set_lens, or
//! unsynced directory changes) a brute-force reference enumerates every
//! image a mode may produce; many seeds are then run through the simulator
//! and the set of images it produced must equal that set: nothing outside
//! it (soundness) and all of it (the seed reaches every allowed outcome).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::vfs::{OpenMode, Vfs, VfsFile};
use failpoints::{CrashMode, SimVfs, TornFill, SECTOR_BYTES};

const FILE: &str = "/db/f";

#[derive(Clone, Debug)]
enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

fn apply(image: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write(offset, bytes) => {
            let start = *offset as usize;
            let end = start + bytes.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(bytes);
        }
        Op::SetLen(len) => image.resize(*len as usize, 0),
    }
}

/// Every ordered selection of distinct indices from 0..n (all subsets, in
/// all orders), the empty one included.
fn ordered_subsets(n: usize) -> Vec<Vec<usize>> {
    fn grow(n: usize, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(prefix.clone());
        for i in 0..n {
            if !prefix.contains(&i) {
                prefix.push(i);
                grow(n, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    grow(n, &mut Vec::new(), &mut out);
    out
}

/// The sector pieces of a write: (start, end) file offsets.
fn pieces(offset: u64, len: usize) -> Vec<(usize, usize)> {
    let sector = SECTOR_BYTES as usize;
    let (start, end) = (offset as usize, offset as usize + len);
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let piece_end = ((pos / sector + 1) * sector).min(end);
        out.push((pos, piece_end));
        pos = piece_end;
    }
    out
}

/// A byte pattern: `None` matches any byte (garbage).
type Pattern = Vec<Option<u8>>;

/// Every image `mode` allows for `durable` followed by unsynced `ops`.
fn allowed(durable: &[u8], ops: &[Op], mode: CrashMode) -> BTreeSet<Pattern> {
    let concrete = |image: Vec<u8>| image.into_iter().map(Some).collect::<Pattern>();
    let mut out = BTreeSet::new();
    match mode {
        CrashMode::DropUnsynced => {
            out.insert(concrete(durable.to_vec()));
        }
        CrashMode::KeepAll => {
            let mut image = durable.to_vec();
            ops.iter().for_each(|op| apply(&mut image, op));
            out.insert(concrete(image));
        }
        CrashMode::LoseSetLen => {
            let mut image = durable.to_vec();
            ops.iter()
                .filter(|op| matches!(op, Op::Write(..)))
                .for_each(|op| apply(&mut image, op));
            out.insert(concrete(image));
        }
        CrashMode::KeepSubset => {
            for order in ordered_subsets(ops.len()) {
                let mut image = durable.to_vec();
                order.iter().for_each(|&i| apply(&mut image, &ops[i]));
                out.insert(concrete(image));
            }
        }
        CrashMode::Torn { fill } => {
            for order in ordered_subsets(ops.len()) {
                torn_images(&concrete(durable.to_vec()), ops, &order, fill, &mut out);
            }
        }
    }
    out
}

/// Apply `order` to `image`, each write with every possible sector mask.
fn torn_images(
    image: &Pattern,
    ops: &[Op],
    order: &[usize],
    fill: TornFill,
    out: &mut BTreeSet<Pattern>,
) {
    let Some((&first, rest)) = order.split_first() else {
        out.insert(image.clone());
        return;
    };
    match &ops[first] {
        Op::SetLen(len) => {
            let mut next = image.clone();
            next.resize(*len as usize, Some(0));
            torn_images(&next, ops, rest, fill, out);
        }
        Op::Write(offset, bytes) => {
            let pieces = pieces(*offset, bytes.len());
            for mask in 0u32..(1 << pieces.len()) {
                let mut next = image.clone();
                let end = *offset as usize + bytes.len();
                if next.len() < end {
                    next.resize(end, Some(0));
                }
                for (i, &(start, piece_end)) in pieces.iter().enumerate() {
                    for pos in start..piece_end {
                        next[pos] = if mask & (1 << i) != 0 {
                            Some(bytes[pos - *offset as usize])
                        } else {
                            match fill {
                                TornFill::Old => next[pos],
                                TornFill::Zero => Some(0),
                                TornFill::Garbage => None,
                            }
                        };
                    }
                }
                torn_images(&next, ops, rest, fill, out);
            }
        }
    }
}

fn matches(pattern: &Pattern, image: &[u8]) -> bool {
    pattern.len() == image.len()
        && pattern
            .iter()
            .zip(image)
            .all(|(p, b)| p.is_none() || *p == Some(*b))
}

/// Run the history on a fresh disk with `seed`, crash in `mode`, return the
/// file's post-crash bytes.
fn simulate(seed: u64, durable: &[u8], ops: &[Op], mode: CrashMode) -> Vec<u8> {
    let sim = SimVfs::new(seed);
    sim.set_crash_mode(Some(mode));
    sim.put_file(Path::new(FILE), durable).unwrap();
    let f = sim.open(Path::new(FILE), OpenMode::ReadWrite).unwrap();
    for op in ops {
        match op {
            Op::Write(offset, bytes) => f.write_all_at(bytes, *offset).unwrap(),
            Op::SetLen(len) => f.set_len(*len).unwrap(),
        }
    }
    sim.verify().unwrap();
    let record = sim.reboot();
    assert_eq!(record.mode, Some(mode));
    sim.verify().unwrap();
    assert!(
        f.len().is_err(),
        "a handle from before the crash must stay dead"
    );
    sim.file(Path::new(FILE))
        .expect("the file's entry was durable")
}

/// Many seeds through the simulator: every image allowed, every allowed
/// image produced (for modes without garbage, exactly).
fn check_mode(durable: &[u8], ops: &[Op], mode: CrashMode, runs: u64) -> usize {
    let allowed = allowed(durable, ops, mode);
    let mut produced: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut matched: BTreeSet<&Pattern> = BTreeSet::new();
    for seed in 0..runs {
        let image = simulate(seed, durable, ops, mode);
        let hits: Vec<&Pattern> = allowed.iter().filter(|p| matches(p, &image)).collect();
        assert!(
            !hits.is_empty(),
            "mode {mode}, seed {seed}: image of {} bytes is not allowed",
            image.len()
        );
        matched.extend(hits);
        produced.insert(image);
    }
    assert_eq!(
        matched.len(),
        allowed.len(),
        "mode {mode}: {} of {} allowed images never produced in {runs} runs",
        allowed.len() - matched.len(),
        allowed.len()
    );
    if !matches!(
        mode,
        CrashMode::Torn {
            fill: TornFill::Garbage
        }
    ) {
        assert_eq!(produced.len(), allowed.len());
    }
    allowed.len()
}

/// Synced: 1024 bytes of 'D'. Unsynced: a write across sectors 0 and 1, an
/// overlapping write (order matters), a truncation, and a write past the
/// truncated end (so a gap of zeroes appears only in some orders).
fn history_a() -> (Vec<u8>, Vec<Op>) {
    (
        vec![b'D'; 1024],
        vec![
            Op::Write(256, vec![b'a'; 512]),
            Op::Write(700, vec![b'b'; 100]),
            Op::SetLen(900),
            Op::Write(1000, vec![b'c'; 600]),
        ],
    )
}

/// Smaller, for the torn modes: synced 600 bytes of 'D'; unsynced a write
/// across a sector boundary, a truncation into it, an overlapping write.
fn history_b() -> (Vec<u8>, Vec<Op>) {
    (
        vec![b'D'; 600],
        vec![
            Op::Write(400, vec![b'a'; 300]),
            Op::SetLen(500),
            Op::Write(450, vec![b'b'; 100]),
        ],
    )
}

#[test]
fn drop_unsynced_keeps_only_synced_bytes() {
    let (durable, ops) = history_a();
    assert_eq!(check_mode(&durable, &ops, CrashMode::DropUnsynced, 50), 1);
}

#[test]
fn keep_all_keeps_what_the_engine_saw() {
    let (durable, ops) = history_a();
    assert_eq!(check_mode(&durable, &ops, CrashMode::KeepAll, 50), 1);
}

#[test]
fn lose_set_len_keeps_writes_but_no_truncation() {
    let (durable, ops) = history_a();
    assert_eq!(check_mode(&durable, &ops, CrashMode::LoseSetLen, 50), 1);
    // Concretely: the truncation to 900 is lost, so 'D' bytes 800..900 and
    // 900..1000 survive, and c lands at 1000.
    let image = simulate(0, &durable, &ops, CrashMode::LoseSetLen);
    assert_eq!(image.len(), 1600);
    assert!(image[900..1000].iter().all(|&b| b == b'D'));
}

#[test]
fn keep_subset_produces_every_subset_in_every_order() {
    let (durable, ops) = history_a();
    let n = check_mode(&durable, &ops, CrashMode::KeepSubset, 4000);
    assert!(
        n > 16,
        "overlaps and the truncation make order matter: {n} images"
    );
}

#[test]
fn torn_old_leaves_lost_sectors_as_they_were() {
    let (durable, ops) = history_b();
    check_mode(
        &durable,
        &ops,
        CrashMode::Torn {
            fill: TornFill::Old,
        },
        30_000,
    );
}

#[test]
fn torn_zero_zeroes_lost_sectors() {
    let (durable, ops) = history_b();
    check_mode(
        &durable,
        &ops,
        CrashMode::Torn {
            fill: TornFill::Zero,
        },
        30_000,
    );
}

#[test]
fn torn_garbage_fills_lost_sectors_with_garbage() {
    let (durable, ops) = history_b();
    check_mode(
        &durable,
        &ops,
        CrashMode::Torn {
            fill: TornFill::Garbage,
        },
        30_000,
    );
}

#[test]
fn a_write_spanning_sectors_tears_at_sector_boundaries() {
    // One unsynced 1024-byte write at offset 256 over 1536 synced bytes
    // spans sectors 0, 1 and 2: each lands whole or not at all, so every
    // torn image is constant on [256, 512), [512, 1024), [1024, 1280).
    let durable = vec![b'D'; 1536];
    let ops = vec![Op::Write(256, vec![b'w'; 1024])];
    let n = check_mode(
        &durable,
        &ops,
        CrashMode::Torn {
            fill: TornFill::Zero,
        },
        2000,
    );
    // Dropped, or kept with one of 8 sector masks (the all-lost mask with
    // zero fill differs from dropped).
    assert_eq!(n, 9);
}

fn entries(sim: &SimVfs) -> BTreeMap<String, Vec<u8>> {
    sim.files()
        .into_iter()
        .map(|(p, b)| (p.file_name().unwrap().to_string_lossy().into_owned(), b))
        .collect()
}

fn map(items: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    items
        .iter()
        .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
        .collect()
}

/// Durable: a = "A", b = "B". Unsynced: create c (its data "C" synced),
/// rename a -> d, unlink b. Returns the post-crash directory.
fn dir_history(seed: u64, mode: CrashMode) -> BTreeMap<String, Vec<u8>> {
    let sim = SimVfs::new(seed);
    sim.set_crash_mode(Some(mode));
    let dir = PathBuf::from("/db");
    sim.put_file(&dir.join("a"), b"A").unwrap();
    sim.put_file(&dir.join("b"), b"B").unwrap();
    let c: Arc<dyn VfsFile> = sim.open(&dir.join("c"), OpenMode::Create).unwrap();
    c.write_all_at(b"C", 0).unwrap();
    c.sync().unwrap();
    sim.rename(&dir.join("a"), &dir.join("d")).unwrap();
    sim.remove(&dir.join("b")).unwrap();
    assert_eq!(sim.list(&dir).unwrap(), ["c", "d"]);
    sim.reboot();
    sim.verify().unwrap();
    entries(&sim)
}

#[test]
fn directory_changes_are_undone_unless_synced() {
    let before = map(&[("a", "A"), ("b", "B")]);
    let after = map(&[("c", "C"), ("d", "A")]);
    let prefixes: BTreeSet<_> = [
        before.clone(),
        map(&[("a", "A"), ("b", "B"), ("c", "C")]),
        map(&[("b", "B"), ("c", "C"), ("d", "A")]),
        after.clone(),
    ]
    .into_iter()
    .collect();
    for mode in CrashMode::ALL {
        let expected: BTreeSet<_> = match mode {
            // The synced file c vanishes: its create was never dir-synced.
            CrashMode::DropUnsynced => [before.clone()].into_iter().collect(),
            CrashMode::KeepAll => [after.clone()].into_iter().collect(),
            _ => prefixes.clone(),
        };
        let produced: BTreeSet<_> = (0..200).map(|seed| dir_history(seed, mode)).collect();
        assert_eq!(produced, expected, "mode {mode}");
    }
}

#[test]
fn sync_dir_makes_directory_changes_durable() {
    for mode in CrashMode::ALL {
        let sim = SimVfs::new(1);
        sim.set_crash_mode(Some(mode));
        let dir = Path::new("/db");
        sim.put_file(&dir.join("old"), b"old").unwrap();
        sim.put_file(&dir.join("x"), b"x").unwrap();
        let new = sim
            .open(&dir.join("new.compact"), OpenMode::Create)
            .unwrap();
        new.write_all_at(b"new", 0).unwrap();
        new.sync().unwrap();
        sim.rename(&dir.join("new.compact"), &dir.join("new"))
            .unwrap();
        sim.remove(&dir.join("old")).unwrap();
        sim.sync_dir(dir).unwrap();
        // Unsynced after the barrier: only this unlink may be undone.
        sim.remove(&dir.join("x")).unwrap();
        sim.reboot();
        let got = entries(&sim);
        assert_eq!(
            got.get("new").map(Vec::as_slice),
            Some(&b"new"[..]),
            "mode {mode}"
        );
        assert!(!got.contains_key("old") && !got.contains_key("new.compact"));
    }
}

#[test]
fn an_undone_rename_brings_back_the_replaced_file() {
    let sim = SimVfs::new(3);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    let dir = Path::new("/db");
    sim.put_file(&dir.join("x"), b"X").unwrap();
    sim.put_file(&dir.join("y"), b"Y").unwrap();
    sim.rename(&dir.join("x"), &dir.join("y")).unwrap();
    assert_eq!(sim.list(dir).unwrap(), ["y"]);
    sim.reboot();
    assert_eq!(entries(&sim), map(&[("x", "X"), ("y", "Y")]));
}

#[test]
fn an_unlinked_file_keeps_its_unsynced_writes_if_the_unlink_is_undone() {
    let sim = SimVfs::new(4);
    sim.set_crash_mode(Some(CrashMode::KeepAll));
    let dir = Path::new("/db");
    sim.put_file(&dir.join("f"), b"synced").unwrap();
    let f = sim.open(&dir.join("f"), OpenMode::ReadWrite).unwrap();
    f.write_all_at(b"!", 6).unwrap();
    sim.remove(&dir.join("f")).unwrap();
    // Linux: an open, unlinked file can still be written and synced.
    f.write_all_at(b"?", 7).unwrap();
    f.sync().unwrap();
    drop(f);
    sim.crash();
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.reboot();
    assert_eq!(entries(&sim), map(&[("f", "synced!?")]));
}
